/**
 * The certificates embedded in `ds:KeyInfo`: node-saml verifies with the pinned certificate
 * only, and the SDK also refuses a verified signature whose KeyInfo carries another
 * certificate (`embedded_certificate_mismatch`), for the Response's and the assertion's
 * signature. Signatures without a certificate, or with the pinned one however it is
 * wrapped, are accepted.
 */
import { ConfigError, createMaestrano, memoryAdapter, SsoError } from '@org/maestrano-sdk';
import { createTestIdp, type LoginOptions, type TestIdp, type TestUser } from '@org/maestrano-sdk/testing';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, type LoginAnswer, startHarness } from './harness.js';
import { signResponse } from './sign-response.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100' };

let h: Harness;
let otherIdp: TestIdp;

beforeAll(async () => {
  otherIdp = createTestIdp({ issuer: 'http://other-idp.test', commonName: 'other-idp.test' });
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

function base64Body(pem: string): string {
  return pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
}

/**
 * Replaces the text of every `ds:X509Certificate`, or of the first one only (in a signed
 * Response, the Response's own). A signature does not cover its own KeyInfo, so it stays valid.
 */
function withEmbedded(xml: string, content: string, which: 'all' | 'first' = 'all'): string {
  const re = /(<ds:X509Certificate>)[^<]*(<\/ds:X509Certificate>)/;
  const out = xml.replace(which === 'all' ? new RegExp(re, 'g') : re, `$1${content}$2`);
  if (out === xml) throw new Error('no ds:X509Certificate to replace');
  return out;
}

/** Adds to the first `ds:KeyInfo` the RSA public key of `pem` as a `ds:KeyValue` (not covered by the signature). */
function withKeyValue(xml: string, pem: string): string {
  const jwk = new X509Certificate(pem).publicKey.export({ format: 'jwk' });
  const b64 = (v: string | undefined) => Buffer.from(v ?? '', 'base64url').toString('base64');
  const keyValue = `<ds:KeyValue><ds:RSAKeyValue><ds:Modulus>${b64(jwk.n)}</ds:Modulus><ds:Exponent>${b64(jwk.e)}</ds:Exponent></ds:RSAKeyValue></ds:KeyValue>`;
  const out = xml.replace('<ds:KeyInfo>', `<ds:KeyInfo>${keyValue}`);
  if (out === xml) throw new Error('no ds:KeyInfo to extend');
  return out;
}


/** SP-initiated login in a fresh browser whose whole Response XML goes through `mutate` before it is posted. */
async function loginWithResponse(target: Harness, user: TestUser, mutate: (responseXml: string) => string, options: LoginOptions = {}): Promise<LoginAnswer> {
  const started = await target.init(target.tenant, `?group_id=${user.groupUid}`);
  const request = target.idp.parseAuthnRequest(started.location);
  const xml = target.idp.responseXml(user, { ...options, acsUrl: request.acsUrl, inResponseTo: request.id });
  return target.post(Buffer.from(mutate(xml), 'utf8').toString('base64'), { cookie: started.cookie });
}

async function expectMismatch(res: LoginAnswer): Promise<void> {
  expect(res.status).toBe(400);
  expect(res.body).toEqual({
    error: 'embedded_certificate_mismatch',
    message: "The SAML response carries a certificate other than this marketplace's certificate",
  });
  // Nothing was provisioned, nothing remembered as used.
  expect(await h.storage.groups.list(h.tenant)).toEqual([]);
  expect(await h.storage.users.get(h.tenant, alice.uid)).toBeNull();
  expect(h.app.calls).toEqual([]);
  expect(h.logins).toEqual([]);
}

describe('a signature by the pinned key whose KeyInfo carries another certificate is refused (embedded_certificate_mismatch)', () => {
  it("the assertion's signature embeds another IdP's certificate", async () => {
    await expectMismatch(await h.login(alice, { mutateSigned: (xml) => withEmbedded(xml, base64Body(otherIdp.certificate)) }));
  });

  it("the assertion's signature embeds the pinned certificate and another one after it", async () => {
    const both = `${base64Body(h.idp.certificate)}</ds:X509Certificate><ds:X509Certificate>${base64Body(otherIdp.certificate)}`;
    await expectMismatch(await h.login(alice, { mutateSigned: (xml) => withEmbedded(xml, both) }));
  });

  it("the assertion's signature embeds text that is not base64", async () => {
    await expectMismatch(await h.login(alice, { mutateSigned: (xml) => withEmbedded(xml, `${base64Body(h.idp.certificate)}!`) }));
  });

  it("the assertion's signature carries another key as a bare ds:KeyValue", async () => {
    await expectMismatch(await h.login(alice, { mutateSigned: (xml) => withKeyValue(xml, otherIdp.certificate) }));
  });

  it("the assertion's signature carries a ds:KeyValue that is not RSA", async () => {
    const ec = '<ds:KeyValue><ds:ECKeyValue><ds:PublicKey>AAAA</ds:PublicKey></ds:ECKeyValue></ds:KeyValue>';
    await expectMismatch(await h.login(alice, { mutateSigned: (xml) => xml.replace('<ds:KeyInfo>', `<ds:KeyInfo>${ec}`) }));
  });

  it("the Response's signature (pinned key) embeds another certificate while the assertion's is genuine", async () => {
    await expectMismatch(await loginWithResponse(h, alice, (xml) => withEmbedded(signResponse(xml, h.idp), base64Body(otherIdp.certificate), 'first')));
  });

  it("the Response is signed by another key with its certificate embedded while the assertion's signature is genuine", async () => {
    await expectMismatch(await loginWithResponse(h, alice, (xml) => signResponse(xml, otherIdp)));
  });

  it('is a typed SsoError (status 400) handed to sso.onError, the detail only in its cause', async () => {
    const seen: SsoError[] = [];
    const fresh = await startHarness({
      sso: {
        onError: (error) => {
          seen.push(error);
          return new Response('refused', { status: error.status });
        },
      },
    });
    try {
      const res = await fresh.login(alice, { mutateSigned: (xml) => withEmbedded(xml, base64Body(otherIdp.certificate)) });
      expect(res.status).toBe(400);
      expect(seen).toHaveLength(1);
      const [error] = seen;
      expect(error).toBeInstanceOf(SsoError);
      expect(error).toMatchObject({ code: 'sso_failed', reason: 'embedded_certificate_mismatch', status: 400 });
      expect(String((error?.cause as Error | undefined)?.message)).toMatch(/Assertion signature embeds a certificate other than the pinned one/);
      expect(await fresh.storage.users.get(fresh.tenant, alice.uid)).toBeNull();
    } finally {
      await fresh.close();
    }
  });
});

describe("a Response's own signature must verify when it is present", () => {
  async function expectSignatureRefused(res: LoginAnswer): Promise<void> {
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'signature', message: 'The SAML response signature is invalid' });
    // Nothing was provisioned, nothing remembered as used.
    expect(await h.storage.groups.list(h.tenant)).toEqual([]);
    expect(await h.storage.users.get(h.tenant, alice.uid)).toBeNull();
    expect(h.app.calls).toEqual([]);
    expect(h.logins).toEqual([]);
  }

  it("a genuine assertion in a Response whose SignatureValue was altered is refused (node-saml alone ignores it)", async () => {
    const tamper = (xml: string) => {
      const signed = signResponse(xml, h.idp);
      // The Response's signature comes first (after its Issuer), the assertion's second.
      const out = signed.replace(/(<ds:SignatureValue>)([A-Za-z])/, (_m, open: string, first: string) => `${open}${first === 'A' ? 'B' : 'A'}`);
      expect(out).not.toBe(signed);
      return out;
    };
    await expectSignatureRefused(await loginWithResponse(h, alice, tamper));
  });

  it('a genuine assertion in a Response changed after it was signed is refused', async () => {
    const alter = (xml: string) => {
      const signed = signResponse(xml, h.idp);
      const out = signed.replace(/IssueInstant="[^"]*"/, 'IssueInstant="2031-01-01T00:00:00Z"');
      expect(out).not.toBe(signed);
      return out;
    };
    await expectSignatureRefused(await loginWithResponse(h, alice, alter));
  });

  it("a genuine assertion in a Response signed by another key with no certificate in KeyInfo is refused", async () => {
    const strip = (xml: string) => signResponse(xml, otherIdp).replace(/<ds:KeyInfo>[\s\S]*?<\/ds:KeyInfo>/, '');
    await expectSignatureRefused(await loginWithResponse(h, alice, strip));
  });
});

describe('the other certificate cases keep their reasons', () => {
  it('signed by another key with its own certificate embedded stays certificate', async () => {
    const res = await h.login(alice, { idp: otherIdp });
    expect(res.body['error']).toBe('certificate');
  });

  it('signed by another key while KeyInfo claims the pinned certificate stays signature', async () => {
    const res = await h.login(alice, { idp: otherIdp, mutateSigned: (xml) => withEmbedded(xml, base64Body(h.idp.certificate)) });
    expect(res.body['error']).toBe('signature');
  });
});

describe('signatures verified by the pinned certificate are accepted', () => {
  let fresh: Harness;
  let seq = 0;
  const someone = (): TestUser => ({ uid: `usr-ok-${++seq}`, email: `ok${seq}@doecorp.com`, groupUid: 'cld-ok' });
  beforeAll(async () => {
    fresh = await startHarness();
  });
  afterAll(async () => {
    await fresh.close();
  });

  async function expectAccepted(res: LoginAnswer, user: TestUser): Promise<void> {
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body['uid']).toBe(user.uid);
    expect(await fresh.storage.users.get(fresh.tenant, user.uid)).not.toBeNull();
  }

  it('with the pinned certificate embedded (the usual layout)', async () => {
    const user = someone();
    await expectAccepted(await fresh.login(user), user);
  });

  it('with no KeyInfo at all', async () => {
    const user = someone();
    const stripKeyInfo = (xml: string) => {
      const out = xml.replace(/<ds:KeyInfo>[\s\S]*?<\/ds:KeyInfo>/, '');
      expect(out).not.toContain('X509Certificate');
      return out;
    };
    await expectAccepted(await fresh.login(user, { mutateSigned: stripKeyInfo }), user);
  });

  it("with the pinned key also given as a ds:KeyValue (the modulus base64 with a leading zero byte or without)", async () => {
    const user = someone();
    await expectAccepted(await fresh.login(user, { mutateSigned: (xml) => withKeyValue(xml, fresh.idp.certificate) }), user);
    const padded = someone();
    const withZero = (xml: string) =>
      withKeyValue(xml, fresh.idp.certificate).replace(/<ds:Modulus>([^<]*)<\/ds:Modulus>/, (_m, b64: string) => `<ds:Modulus>${Buffer.concat([Buffer.from([0]), Buffer.from(b64, 'base64')]).toString('base64')}</ds:Modulus>`);
    await expectAccepted(await fresh.login(padded, { mutateSigned: withZero }), padded);
  });

  it('with the pinned certificate wrapped at 64 columns and indented, or in PEM armour', async () => {
    const body = base64Body(fresh.idp.certificate);
    const wrapped = `\n        ${body.match(/.{1,64}/g)?.join('\r\n        ')}\n      `;
    const user = someone();
    await expectAccepted(await fresh.login(user, { mutateSigned: (xml) => withEmbedded(xml, wrapped) }), user);
    const armoured = someone();
    await expectAccepted(await fresh.login(armoured, { mutateSigned: (xml) => withEmbedded(xml, fresh.idp.certificate) }), armoured);
  });

  it('with both the Response and the assertion signed, each embedding the pinned certificate', async () => {
    const user = someone();
    await expectAccepted(await loginWithResponse(fresh, user, (xml) => signResponse(xml, fresh.idp)), user);
  });

  it('with both the certificate and its fingerprint pinned; a fingerprint of another key does not load', async () => {
    const both = await startHarness({ tenantSso: { x509_certificate: fresh.idp.certificate, x509_fingerprint: fresh.idp.fingerprint.toUpperCase() } });
    try {
      const user = someone();
      const res = await both.login(user);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect((await both.storage.users.get(both.tenant, user.uid))?.userId).toBe(res.body['userId']);
    } finally {
      await both.close();
    }
    // Before: the mismatching fingerprint was silently ignored and the certificate alone trusted.
    const mismatched = fresh.idp.marketplace({
      name: 'mismatched',
      appHost: 'https://app.example.com',
      apiId: 'app-mismatched',
      apiKey: 'mismatched-key',
      sso: { x509_fingerprint: otherIdp.fingerprint },
    });
    let error: unknown;
    try {
      createMaestrano({ tenants: [mismatched], storage: memoryAdapter(), provisioning: both.app.hooks, onLogin: () => new Response('ok') });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([
      { path: 'tenants[0].sso.x509_fingerprint', message: 'does not match the configured certificate (sso.x509_certificate)' },
    ]);
  });

  it('with the fingerprint fallback (the embedded certificate is the trusted one)', async () => {
    const byFingerprint = await startHarness({ tenantSso: { x509_certificate: null, x509_fingerprint: fresh.idp.fingerprint } });
    try {
      const user = someone();
      const res = await byFingerprint.login(user);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body['uid']).toBe(user.uid);
    } finally {
      await byFingerprint.close();
    }
  });
});
