import { createTestIdp, type LoginOptions, type TestIdp, type TestUser, tamperAttribute } from '@org/maestrano-sdk/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { memoryState } from '../../src/storage/memory.js';
import { type Harness, type LoginAnswer, startHarness } from './harness.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100' };
const mallory: TestUser = { uid: 'usr-mallory', email: 'mallory@evil.example', groupUid: 'cld-666', groupRole: 'Super Admin' };

let h: Harness;
let otherIdp: TestIdp;

beforeAll(async () => {
  otherIdp = createTestIdp({ issuer: 'http://other-idp.test' });
  h = await startHarness({
    extraTenants: (baseUrl) => [
      otherIdp.marketplace({ name: 'other-market', appHost: baseUrl, apiId: 'app-other', apiKey: 'other-api-key' }),
    ],
  });
});
afterAll(async () => {
  await h.close();
});
// Every case starts from an empty store and app (a case may end with a genuine login).
afterEach(() => {
  memoryState(h.storage).clear();
  h.app.calls.length = 0;
  h.app.companies.clear();
  h.app.users.clear();
  h.app.memberships.clear();
  h.logins.length = 0;
});

/** SP-initiated login whose response is built with `options`; the browser cookie is the genuine one. */
async function attempt(options: LoginOptions & { idp?: TestIdp; user?: TestUser }): Promise<LoginAnswer> {
  return h.login(options.user ?? alice, options);
}

async function expectRefused(res: LoginAnswer, status: number, reason: string): Promise<void> {
  expect(res.status).toBe(status);
  expect(res.body['error']).toBe(reason);
  // Safe body: the reason and a fixed message, never a stack or internal detail.
  expect(Object.keys(res.body).sort()).toEqual(['error', 'message']);
  expect(String(res.body['message'])).not.toMatch(/at \w+ \(|node_modules|Error:/);
  // Nothing was provisioned.
  expect(await h.storage.groups.list(h.tenant)).toEqual([]);
  expect(await h.storage.users.get(h.tenant, alice.uid)).toBeNull();
  expect(await h.storage.users.get(h.tenant, mallory.uid)).toBeNull();
  expect(h.app.calls).toEqual([]);
  expect(h.logins).toEqual([]);
  // The refused response did not burn its assertion id (the replay store is untouched).
  expect([...memoryState(h.storage).replay.keys()]).toEqual([]);
}

/**
 * After a refusal, the genuine response (same assertion id, the right cookie) still logs in:
 * the refusal consumed neither the assertion id nor the browser binding.
 */
async function expectGenuineAccepted(samlResponse: string, cookie: string | undefined): Promise<void> {
  const res = await h.post(samlResponse, cookie === undefined ? {} : { cookie });
  expect(res.body['error']).toBeUndefined();
  expect(res.status).toBe(200);
  expect(res.body['session']).toMatchObject({ uid: alice.uid });
  expect(h.logins).toHaveLength(1);
  expect(memoryState(h.storage).replay.size).toBe(1);
}

describe('SSO consume refuses every bad response with a typed reason and changes nothing', () => {
  it('signature: an attribute tampered with after signing', async () => {
    await expectRefused(await attempt({ mutateSigned: (xml) => tamperAttribute(xml, 'email', 'mallory@evil.example') }), 400, 'signature');
  });

  it('signature: the group role tampered with after signing', async () => {
    await expectRefused(await attempt({ mutateSigned: (xml) => tamperAttribute(xml, 'group_role', 'Super Admin') }), 400, 'signature');
  });

  it('signature: an unsigned assertion', async () => {
    await expectRefused(await attempt({ sign: false }), 400, 'signature');
  });

  for (const layout of ['evilFirst', 'genuineInExtensions', 'genuineInsideEvil'] as const) {
    it(`signature: XML signature wrapping (${layout})`, async () => {
      await expectRefused(await attempt({ xsw: { layout, evilUser: mallory } }), 400, 'signature');
    });
  }

  it("certificate: signed by another tenant's IdP key", async () => {
    await expectRefused(await attempt({ idp: otherIdp }), 400, 'certificate');
  });

  it('expired: issued 10 minutes ago (beyond the 3 min skew)', async () => {
    await expectRefused(await attempt({ now: new Date(Date.now() - 10 * 60_000) }), 400, 'expired');
  });

  it('expired: the assertion Conditions window has passed even though the subject window is open', async () => {
    await expectRefused(await attempt({ conditionsLifetimeMs: -5 * 60_000 }), 400, 'expired');
  });

  it('malformed: validity times without a time zone (read in local time, an expired assertion passed on a server west of UTC)', async () => {
    const zoneless = (xml: string) => xml.replace(/(NotBefore|NotOnOrAfter)="([^"]+)Z"/g, '$1="$2"');
    await expectRefused(await attempt({ mutateUnsigned: zoneless }), 400, 'malformed');
    await expectRefused(await attempt({ now: new Date(Date.now() - 2 * 3_600_000), mutateUnsigned: zoneless }), 400, 'malformed');
  });

  it('not_yet_valid: issued 10 minutes in the future', async () => {
    await expectRefused(await attempt({ now: new Date(Date.now() + 10 * 60_000) }), 400, 'not_yet_valid');
  });

  it('audience: meant for another service provider', async () => {
    await expectRefused(await attempt({ audience: 'https://other-app.example' }), 400, 'audience');
  });

  it('recipient: SubjectConfirmationData for another ACS', async () => {
    await expectRefused(await attempt({ recipient: 'https://other-app.example/maestrano/auth/saml/consume/x' }), 400, 'recipient');
  });

  it('destination: Response@Destination of another endpoint', async () => {
    await expectRefused(await attempt({ destination: 'https://other-app.example/acs' }), 400, 'destination');
  });

  it('in_response_to: answering a request this browser never started (no binding cookie)', async () => {
    const started = await h.init();
    const { samlResponse } = h.idp.respondTo(started.location, alice);
    await expectRefused(await h.post(samlResponse), 400, 'in_response_to');
    await expectGenuineAccepted(samlResponse, started.cookie);
  });

  it("in_response_to: answering another browser's request", async () => {
    const victim = await h.init();
    const attacker = await h.init();
    const { samlResponse } = h.idp.respondTo(attacker.location, alice);
    await expectRefused(await h.post(samlResponse, { cookie: victim.cookie }), 400, 'in_response_to');
    await expectGenuineAccepted(samlResponse, attacker.cookie);
  });

  it('in_response_to: a forged binding cookie', async () => {
    const started = await h.init();
    const { samlResponse, request } = h.idp.respondTo(started.location, alice);
    const forged = `mno_sso_req_maestrano-test=${Buffer.from(JSON.stringify([[request.id, Date.now() + 60_000]])).toString('base64url')}.AAAA`;
    await expectRefused(await h.post(samlResponse, { cookie: forged }), 400, 'in_response_to');
    await expectGenuineAccepted(samlResponse, started.cookie);
  });

  it('in_response_to: IdP-initiated responses are refused by default', async () => {
    await expectRefused(await h.post(h.idp.response(alice, { acsUrl: h.acsUrl, assertionId: '_idp-initiated-refused' })), 400, 'in_response_to');
    // A solicited response carrying the same assertion id is still accepted.
    const started = await h.init();
    const { samlResponse } = h.idp.respondTo(started.location, alice, { assertionId: '_idp-initiated-refused' });
    await expectGenuineAccepted(samlResponse, started.cookie);
  });

  it("in_response_to: an unsolicited assertion in a Response claiming this browser's request (Response@InResponseTo is unsigned)", async () => {
    const started = await h.init();
    const request = h.idp.parseAuthnRequest(started.location);
    const unsolicited = h.idp.responseXml(alice, { acsUrl: h.acsUrl, inResponseTo: null, assertionId: '_unsolicited-refused' });
    const forged = unsolicited.replace('<samlp:Response ', `<samlp:Response InResponseTo="${request.id}" `);
    await expectRefused(await h.post(Buffer.from(forged).toString('base64'), { cookie: started.cookie }), 400, 'in_response_to');
    // Neither the browser's request nor the assertion id was used up by the refusal.
    const { samlResponse } = h.idp.respondTo(started.location, alice, { assertionId: '_unsolicited-refused' });
    await expectGenuineAccepted(samlResponse, started.cookie);
  });

  it('status: the IdP answered with a non-success status', async () => {
    await expectRefused(await attempt({ status: 'urn:oasis:names:tc:SAML:2.0:status:Responder' }), 400, 'status');
  });

  it('status: an unverified status value of any length is logged cut to 200 characters', async () => {
    const warnings: Record<string, unknown>[] = [];
    const logged = await startHarness({ logger: { debug() {}, info() {}, warn: (_m, f) => warnings.push(f ?? {}), error() {} } });
    try {
      const status = `urn:${'a.'.repeat(60_000)}`;
      const res = await logged.login(alice, { status });
      expect(res.status).toBe(400);
      expect(res.body['error']).toBe('status');
      const causes = warnings.map((w) => String(w.cause)).filter((c) => c.includes('status "urn:'));
      expect(causes).toEqual([`Error: status ${JSON.stringify(status.slice(0, 200))}`]);
    } finally {
      await logged.close();
    }
  });

  it('malformed: not base64, not XML, no SAMLResponse, wrong content type', async () => {
    await expectRefused(await h.post('%%%not-base64%%%'), 400, 'malformed');
    await expectRefused(await h.post(Buffer.from('<samlp:Response', 'utf8').toString('base64')), 400, 'malformed');
    const noField = await fetch(h.acsUrl, { method: 'POST', body: new URLSearchParams({ other: 'x' }) });
    expect(noField.status).toBe(400);
    expect(await noField.json()).toEqual({ error: 'malformed', message: 'The SAML response is malformed' });
    const json = await fetch(h.acsUrl, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(json.status).toBe(400);
    await json.body?.cancel();
  });

  it('malformed: the log says which content type came and which one the ACS expects', async () => {
    const warnings: Record<string, unknown>[] = [];
    const logged = await startHarness({ logger: { debug() {}, info() {}, warn: (_m, f) => warnings.push(f ?? {}), error() {} } });
    try {
      const none = await fetch(logged.acsUrl, { method: 'POST' });
      expect(none.status).toBe(400);
      await none.body?.cancel();
      const json = await fetch(logged.acsUrl, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
      expect(json.status).toBe(400);
      await json.body?.cancel();
      expect(warnings.map((w) => w.cause)).toEqual([
        'Error: no content-type (the ACS expects application/x-www-form-urlencoded, the HTTP-POST binding)',
        'Error: content-type "application/json" (the ACS expects application/x-www-form-urlencoded, the HTTP-POST binding)',
      ]);
    } finally {
      await logged.close();
    }
  });

  it('malformed: a DOCTYPE (even with unused entities) in an otherwise valid signed response', async () => {
    const started = await h.init();
    const request = h.idp.parseAuthnRequest(started.location);
    const xml = h.idp.responseXml(alice, { acsUrl: request.acsUrl, inResponseTo: request.id });
    const withDoctype = `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY unused "x">]>${xml}`;
    await expectRefused(await h.post(Buffer.from(withDoctype).toString('base64'), { cookie: started.cookie }), 400, 'malformed');
  });

  it('malformed: a response with tens of thousands of siblings (node-saml would take minutes), refused before its signature is checked', async () => {
    const started = await h.init();
    const request = h.idp.parseAuthnRequest(started.location);
    const xml = h.idp.responseXml(alice, { acsUrl: request.acsUrl, inResponseTo: request.id });
    // Unsigned filler is enough: without the shape check this reached node-saml's XPath.
    const wide = xml.replace(/(<samlp?:Response\b[^>]*>)/, `$1${'<x/>'.repeat(20_000)}`);
    expect(wide.length).toBeGreaterThan(xml.length + 70_000);
    await expectRefused(await h.post(Buffer.from(wide).toString('base64'), { cookie: started.cookie }), 400, 'malformed');
    const deepInAssertion = xml.replace(/(<saml2?:Assertion\b[^>]*>)/, `$1${'<x/>'.repeat(600)}`);
    expect(deepInAssertion).not.toBe(xml);
    await expectRefused(await h.post(Buffer.from(deepInAssertion).toString('base64'), { cookie: started.cookie }), 400, 'malformed');
  });

  for (const attribute of ['uid', 'mno_uid'] as const) {
    const other = attribute === 'uid' ? 'mno_uid' : 'uid';
    it(`malformed: a${attribute === 'uid' ? '' : 'n'} ${attribute} attribute other than the NameID, even when ${other} matches it`, async () => {
      const started = await h.init(h.tenant, `?group_id=${alice.groupUid}`);
      const assertionId = `_bad-${attribute}`;
      const bad = h.idp.respondTo(started.location, { ...alice, extra: { [attribute]: mallory.uid } }, { assertionId });
      await expectRefused(await h.post(bad.samlResponse, { cookie: started.cookie }), 400, 'malformed');
      // The genuine response for the same request and the same assertion id still logs in.
      const genuine = h.idp.respondTo(started.location, alice, { assertionId });
      await expectGenuineAccepted(genuine.samlResponse, started.cookie);
    });
  }

  it('unknown_tenant: 404 JSON for a tenant that does not exist', async () => {
    const res = await fetch(`${h.baseUrl}/maestrano/auth/saml/consume/nowhere`, { method: 'POST', body: 'SAMLResponse=x' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'unknown_tenant', message: 'Unknown tenant' });
  });
});

describe('replay and accepted edge cases', () => {
  it('a response within the clock skew is accepted; replaying it (with the old cookie) is refused', async () => {
    const fresh = await startHarness();
    try {
      const started = await fresh.init(fresh.tenant, '?group_id=cld-100');
      const { samlResponse } = fresh.idp.respondTo(started.location, alice, { now: new Date(Date.now() - 4 * 60_000) });
      const first = await fresh.post(samlResponse, { cookie: started.cookie });
      expect(first.status).toBe(200);
      // The used request id is removed from the browser binding.
      expect(first.setCookie.some((c) => /^mno_sso_req_maestrano-test=; Max-Age=0/.test(c))).toBe(true);
      const replay = await fresh.post(samlResponse, { cookie: started.cookie });
      expect(replay.status).toBe(400);
      expect(replay.body['error']).toBe('replay');
      expect(fresh.logins).toHaveLength(1);
      expect(fresh.app.count('createUser')).toBe(1);
    } finally {
      await fresh.close();
    }
  });

  it('without uid and mno_uid attributes the user is keyed on the NameID', async () => {
    const fresh = await startHarness();
    try {
      const res = await fresh.login({ ...alice, extra: { uid: null, mno_uid: null } });
      expect(res.status).toBe(200);
      expect(res.body['session']).toMatchObject({ uid: alice.uid });
      expect((await fresh.storage.users.get(fresh.tenant, alice.uid))?.userId).toBe(res.body['userId']);
    } finally {
      await fresh.close();
    }
  });

  it('IdP-initiated responses are accepted when allowed, and their replay is refused', async () => {
    const fresh = await startHarness({ sso: { allowIdpInitiated: true } });
    try {
      const response = fresh.idp.response(alice, { acsUrl: fresh.acsUrl });
      expect((await fresh.post(response)).status).toBe(200);
      const replay = await fresh.post(response);
      expect(replay.body['error']).toBe('replay');
      expect(fresh.logins).toHaveLength(1);
    } finally {
      await fresh.close();
    }
  });

  it('fingerprint fallback: accepts the embedded certificate matching the configured fingerprint, refuses another', async () => {
    const idp = h.idp;
    const fresh = await startHarness({ tenantSso: { x509_certificate: null, x509_fingerprint: idp.fingerprint.toUpperCase() } });
    try {
      expect((await fresh.login(alice)).status).toBe(200);
      const other = await fresh.login({ ...alice, uid: 'usr-2' }, { idp: otherIdp });
      expect(other.status).toBe(400);
      expect(other.body['error']).toBe('certificate');
      expect(await fresh.storage.users.get(fresh.tenant, 'usr-2')).toBeNull();
    } finally {
      await fresh.close();
    }
  });

  it('rsa-sha1 signatures (what the historical IdP used) are accepted', async () => {
    const fresh = await startHarness();
    try {
      expect((await fresh.login(alice, { algorithm: 'sha1' })).status).toBe(200);
    } finally {
      await fresh.close();
    }
  });

  it('a custom sso.onError renders the page instead of the JSON answer', async () => {
    const fresh = await startHarness({
      sso: { onError: (error) => new Response(`<p>Login failed (${error.reason})</p>`, { status: error.status, headers: { 'content-type': 'text/html' } }) },
    });
    try {
      const res = await fresh.login(alice, { sign: false });
      expect(res.status).toBe(400);
      expect(res.body['text']).toBe('<p>Login failed (signature)</p>');
    } finally {
      await fresh.close();
    }
  });

  it('sso.onError also renders SSO links naming a marketplace that does not exist (tenant: null); other routes keep the JSON 404', async () => {
    const seen: { reason: string; tenant: unknown }[] = [];
    const fresh = await startHarness({
      sso: {
        onError: (error, { tenant }) => {
          seen.push({ reason: error.reason, tenant });
          return new Response(`<p>Login failed (${error.reason})</p>`, { status: error.status, headers: { 'content-type': 'text/html' } });
        },
      },
    });
    try {
      const init = await fetch(`${fresh.baseUrl}/maestrano/auth/saml/init/gone-marketplace?group_id=cld-1`, { redirect: 'manual' });
      expect(init.status).toBe(404);
      expect(init.headers.get('content-type')).toMatch(/text\/html/);
      expect(await init.text()).toBe('<p>Login failed (unknown_tenant)</p>');
      const consume = await fetch(`${fresh.baseUrl}/maestrano/auth/saml/consume/gone-marketplace`, { method: 'POST', body: 'SAMLResponse=x' });
      expect(await consume.text()).toBe('<p>Login failed (unknown_tenant)</p>');
      expect(seen).toEqual([
        { reason: 'unknown_tenant', tenant: null },
        { reason: 'unknown_tenant', tenant: null },
      ]);
      // Not an SSO route: the machine-facing answer stays JSON, and the hook is not called.
      const metadata = await fetch(`${fresh.baseUrl}/maestrano/metadata/gone-marketplace`);
      expect(metadata.status).toBe(404);
      expect(await metadata.json()).toEqual({ error: 'unknown_tenant', message: 'Unknown tenant' });
      const stray = await fetch(`${fresh.baseUrl}/somewhere/else/gone-marketplace`);
      expect(await stray.json()).toEqual({ error: 'unknown_tenant', message: 'Unknown tenant' });
      expect(seen).toHaveLength(2);
    } finally {
      await fresh.close();
    }
  });
});
