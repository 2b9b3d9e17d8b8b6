/**
 * SSO consume benchmark (on demand, not part of `npm test`):
 *   node --conditions=@org/source --import tsx bench/sso/consume.ts [responsesPerRound] [rounds]
 *
 * Compares one valid SP-initiated response consumed through `mno.handler` (memory adapter,
 * known user: validation + replay record + provisioning lookups + onLogin) with bare
 * node-saml `validatePostResponseAsync` on the very same responses, in the same run.
 * Replay protection means a response is accepted once, so each round pre-generates N fresh
 * signed responses (each bound to its own AuthnRequest) and feeds the same N to both sides.
 * Goal: ratio <= 1.3x.
 */
import { performance } from 'node:perf_hooks';
import { SAML, ValidateInResponseTo } from '@node-saml/node-saml';
import { createMaestrano, memoryAdapter } from '@org/maestrano-sdk';
import { createTestIdp, type TestUser } from '@org/maestrano-sdk/testing';

const N = Number(process.argv[2] ?? 300);
const ROUNDS = Number(process.argv[3] ?? 3);
const APP = 'http://app.bench.test';
const TENANT = 'bench-market';

const idp = createTestIdp();
const mno = createMaestrano({
  tenants: [idp.marketplace({ name: TENANT, appHost: APP, apiId: 'app-bench', apiKey: 'bench-api-key' })],
  storage: memoryAdapter(),
  provisioning: { createCompany: () => ({ id: 'company-1' }), createUser: () => ({ id: 'user-1' }) },
  onLogin: ({ user }) => new Response(null, { status: 302, headers: { location: `/home?u=${user.id}` } }),
  logger: { debug() {}, info() {}, warn() {}, error() {} },
});
const acsUrl = `${APP}/maestrano/auth/saml/consume/${TENANT}`;
const user: TestUser = { uid: 'usr-bench', email: 'bench@example.com', groupUid: 'cld-bench' };

const bare = new SAML({
  idpCert: idp.certificate,
  issuer: 'app-bench',
  callbackUrl: acsUrl,
  audience: new URL(acsUrl).origin,
  wantAssertionsSigned: true,
  wantAuthnResponseSigned: false,
  validateInResponseTo: ValidateInResponseTo.never,
});

interface Prepared {
  samlResponse: string;
  cookie: string;
}

async function prepare(count: number): Promise<Prepared[]> {
  const out: Prepared[] = [];
  for (let i = 0; i < count; i++) {
    const init = await mno.handler(new Request(`${APP}/maestrano/auth/saml/init/${TENANT}?group_id=cld-bench`));
    const cookie = (init.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const { samlResponse } = idp.respondTo(init.headers.get('location') ?? '', user);
    out.push({ samlResponse, cookie });
  }
  return out;
}

function consumeRequest(p: Prepared): Request {
  return new Request(acsUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: p.cookie },
    body: new URLSearchParams({ SAMLResponse: p.samlResponse }).toString(),
  });
}

async function sdkOnce(p: Prepared): Promise<number> {
  const start = performance.now();
  const res = await mno.handler(consumeRequest(p));
  const ms = performance.now() - start;
  if (res.status !== 302) throw new Error(`SDK refused a valid response: ${res.status} ${await res.text()}`);
  return ms;
}

async function bareOnce(p: Prepared): Promise<number> {
  const start = performance.now();
  const { profile } = await bare.validatePostResponseAsync({ SAMLResponse: p.samlResponse });
  const ms = performance.now() - start;
  if (profile?.nameID !== user.uid) throw new Error('node-saml refused a valid response');
  return ms;
}

/**
 * Paired measurement: each response goes through both sides back to back (alternating
 * which side goes first), so load changes on a shared machine hit both sides alike.
 */
async function round(set: Prepared[]): Promise<{ bareMs: number; sdkMs: number }> {
  let bareMs = 0;
  let sdkMs = 0;
  for (let i = 0; i < set.length; i++) {
    const p = set[i]!;
    if (i % 2 === 0) {
      bareMs += await bareOnce(p);
      sdkMs += await sdkOnce(p);
    } else {
      sdkMs += await sdkOnce(p);
      bareMs += await bareOnce(p);
    }
  }
  return { bareMs, sdkMs };
}

// The known user: the first login provisions it; then warm both paths up.
await round(await prepare(1));
await round(await prepare(Math.min(50, N)));

const ratios: number[] = [];
let sdkTotalMs = 0;
let sdkTotalOps = 0;
console.log(`sso consume: ${N} responses per round, ${ROUNDS} rounds (same responses on both sides, paired)`);
for (let r = 0; r < ROUNDS; r++) {
  const { bareMs, sdkMs } = await round(await prepare(N));
  ratios.push(sdkMs / bareMs);
  sdkTotalMs += sdkMs;
  sdkTotalOps += N;
  console.log(
    `round ${r + 1}: node-saml ${(bareMs / N).toFixed(3)} ms/op, mno.handler ${(sdkMs / N).toFixed(3)} ms/op, ratio ${(sdkMs / bareMs).toFixed(2)}x`,
  );
}
ratios.sort((a, b) => a - b);
const median = ratios[Math.floor(ratios.length / 2)] ?? Number.NaN;
console.log(`median ratio mno.handler / bare node-saml: ${median.toFixed(2)}x (goal <= 1.30x) ${median <= 1.3 ? 'OK' : 'ABOVE GOAL'}`);
console.log(`mno.handler consumes/second: ${((sdkTotalOps / sdkTotalMs) * 1000).toFixed(0)}`);
