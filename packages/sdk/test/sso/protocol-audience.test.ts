import { randomUUID } from 'node:crypto';
import { signAssertion, type TestUser } from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

/**
 * PROTOCOL §3.3: the IdP sets `AudienceRestriction/Audience` to the scheme and host of the
 * ACS. Maestrano's IdP computes it as `saml_acs_url[/^(.*?\/\/.*?\/)/, 1]` (the saml_idp
 * gem, which the API sandbox's `encode_SAMLResponse` copies): everything up to and including
 * the first `/` after the host, so `https://app.example.com:3000/`, with a trailing slash.
 */
function maestranoAudience(acsUrl: string): string {
  const match = /^(.*?\/\/.*?\/)/.exec(acsUrl);
  if (!match) throw new Error(`no audience in ${acsUrl}`);
  return match[1]!;
}

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100' };

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

describe("SSO consume accepts the Audience Maestrano's IdP sets (PROTOCOL §3.3)", () => {
  it('the scheme and host of the ACS written as the IdP writes it, with its trailing slash', async () => {
    const audience = maestranoAudience(h.acsUrl);
    expect(audience).toBe(`${new URL(h.acsUrl).origin}/`);
    const res = await h.login(alice, { audience });
    expect(res.body['error']).toBeUndefined();
    expect(res.status).toBe(200);
    expect(res.body['uid']).toBe(alice.uid);
  });

  it('still refuses another host written the same way', async () => {
    const res = await h.login(alice, { audience: 'https://other-app.example/' });
    expect(res.status).toBe(400);
    expect(res.body['error']).toBe('audience');
  });
});

describe("SSO consume accepts a response written exactly as Maestrano's IdP writes it (PROTOCOL §3.3, §3.4)", () => {
  const iso = (d: Date) => `${d.toISOString().slice(0, 19)}Z`;
  const ASSERTION_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';

  /** The IdP's `encode_SAMLResponse`: default namespaces, the assertion alone signed (RSA-SHA1). */
  function maestranoResponse(location: string): string {
    const request = h.idp.parseAuthnRequest(location);
    const acs = request.acsUrl;
    const now = new Date();
    const ref = `_${randomUUID()}`;
    const issuer = location.replace(/(&.*$)/, '');
    const attributes: [string, string][] = [
      ['mno_session', 'sess-token-1'],
      ['mno_session_recheck', iso(new Date(now.getTime() + 180_000))],
      ['group_uid', alice.groupUid],
      ['group_end_free_trial', iso(new Date(now.getTime() + 30 * 86_400_000))],
      ['group_role', 'Admin'],
      ['uid', alice.uid],
      ['virtual_uid', `${alice.uid}.${alice.groupUid}`],
      ['email', alice.email],
      ['virtual_email', `${alice.uid}.${alice.groupUid}@mno-api-sandbox-mail.maestrano.com`],
      ['name', 'Alice'],
      ['surname', 'Doe'],
      ['country', 'AU'],
      ['company_name', 'DoeCorp'],
      ['app_owner', 'true'],
      ['organizations', '{}'],
    ];
    const attrXml = attributes.map(([k, v]) => `<Attribute Name="${k}"><AttributeValue>${v}</AttributeValue></Attribute>`).join('');
    const assertion =
      `<Assertion xmlns="${ASSERTION_NS}" ID="${ref}" IssueInstant="${iso(now)}" Version="2.0"><Issuer>${issuer.replaceAll('&', '&amp;')}</Issuer>` +
      `<Subject><NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">${alice.uid}</NameID>` +
      `<SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><SubjectConfirmationData InResponseTo="${request.id}" NotOnOrAfter="${iso(new Date(now.getTime() + 180_000))}" Recipient="${acs}"></SubjectConfirmationData></SubjectConfirmation></Subject>` +
      `<Conditions NotBefore="${iso(new Date(now.getTime() - 5_000))}" NotOnOrAfter="${iso(new Date(now.getTime() + 3_600_000))}"><AudienceRestriction><Audience>${maestranoAudience(acs)}</Audience></AudienceRestriction></Conditions>` +
      `<AttributeStatement><Attribute Name="mno_uid"><AttributeValue>${alice.uid}</AttributeValue></Attribute>${attrXml}</AttributeStatement>` +
      `<AuthnStatement AuthnInstant="${iso(now)}" SessionIndex="${ref}"><AuthnContext><AuthnContextClassRef>urn:federation:authentication:windows</AuthnContextClassRef></AuthnContext></AuthnStatement></Assertion>`;
    const signed = signAssertion(assertion, { privateKey: h.idp.privateKey, certificate: h.idp.certificate }, 'sha1');
    const xml =
      `<samlp:Response ID="_${randomUUID()}" Version="2.0" IssueInstant="${iso(now)}" Destination="${acs}" Consent="urn:oasis:names:tc:SAML:2.0:consent:unspecified" InResponseTo="${request.id}" xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">` +
      `<Issuer xmlns="${ASSERTION_NS}">${issuer.replaceAll('&', '&amp;')}</Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success" /></samlp:Status>${signed}</samlp:Response>`;
    return Buffer.from(xml, 'utf8').toString('base64');
  }

  it('logs the user in with the attributes of §3.4', async () => {
    const started = await h.init(h.tenant, `?group_id=${alice.groupUid}`);
    const res = await h.post(maestranoResponse(started.location), { cookie: started.cookie });
    expect(res.body['error']).toBeUndefined();
    expect(res.status).toBe(200);
    expect(res.body['uid']).toBe(alice.uid);
    expect(res.body['role']).toBe('Admin');
    expect(res.body['session']).toMatchObject({ uid: alice.uid, groupUid: alice.groupUid, session: 'sess-token-1' });
  });
});

describe('the Audience as the IdP copies it from an ACS URL spelled with capitals or a default port', () => {
  it("is accepted: the gem copies the URL's text, which URL.origin would normalise", async () => {
    const spelled = await startHarness({ tenantSso: { idm: 'http://App.Example.com:80' } });
    try {
      const started = await spelled.init(spelled.tenant, `?group_id=${alice.groupUid}`);
      const acs = spelled.idp.parseAuthnRequest(started.location).acsUrl;
      expect(acs).toBe(`http://App.Example.com:80/maestrano/auth/saml/consume/${spelled.tenant}`);
      const audience = maestranoAudience(acs);
      expect(audience).toBe('http://App.Example.com:80/');
      const { samlResponse } = spelled.idp.respondTo(started.location, alice, { audience });
      const res = await spelled.post(samlResponse, { cookie: started.cookie });
      expect(res.body['error']).toBeUndefined();
      expect(res.status).toBe(200);
      expect(res.body['uid']).toBe(alice.uid);
      // Another host spelled the same way is still refused.
      const again = await spelled.init(spelled.tenant, `?group_id=${alice.groupUid}`);
      const other = spelled.idp.respondTo(again.location, alice, { audience: 'http://Other.Example.com:80/' });
      const refused = await spelled.post(other.samlResponse, { cookie: again.cookie });
      expect(refused.body['error']).toBe('audience');
    } finally {
      await spelled.close();
    }
  });
});
