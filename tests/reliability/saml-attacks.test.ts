/**
 * The SAML attack matrix against the SDK's ACS (createMaestrano on PostgreSQL, over loopback
 * HTTP), with responses from the SDK's test IdP (real RSA keys). Every hostile case must be
 * refused with the expected status and `SsoError` reason, call no provisioning hook and leave
 * every SDK table byte-for-byte as before. Controls (valid variants) must be accepted.
 */
import {
  buildAssertionXml,
  buildResponseXml,
  createTestIdp,
  maestranoAttributes,
  signAssertion,
  type TestIdp,
  type TestUser,
  tamperAttribute,
} from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLogin } from '../e2e/sso/harness.js';
import type { Answer } from './lib/http.js';
import { pgUnavailableReason } from './lib/pg.js';
import { report } from './lib/report.js';
import {
  addKeyValue,
  b64,
  injectComment,
  moveAssertion,
  replaceAlgorithm,
  replaceEmbeddedCertificate,
  signAssertionHmac,
  signResponse,
  XSW_VARIANTS,
  xswVariant,
} from './lib/saml.js';
import { type SsoTarget, startSsoTarget } from './lib/sso.js';

const unavailable = await pgUnavailableReason();
// CI must run these tests: there a missing PostgreSQL fails the file instead of skipping it.
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);
if (unavailable) console.warn(`[reliability/saml] skipped: ${unavailable}`);

const MAIN = 'rel-main';
const OTHER = 'rel-other';
const SHARED = 'rel-shared';
const SKEW = 180_000;

let idp: TestIdp;
let otherIdp: TestIdp;
let t: SsoTarget;
let seq = 0;
const victim = (): TestUser => ({ uid: `usr-victim-${++seq}`, email: `victim${seq}@doecorp.example`, groupUid: 'cld-victim' });
const mallory = { uid: 'usr-mallory', email: 'mallory@evil.example', groupUid: 'cld-evil' };

interface Outcome {
  tried: number;
  refused: number;
  accepted: number;
}
const tally: Outcome = { tried: 0, refused: 0, accepted: 0 };

async function expectRefused(attempt: () => Promise<Answer>, status: number, reason: string): Promise<void> {
  tally.tried++;
  const before = await t.db.fingerprint();
  const calls = { ...t.app.calls };
  const res = await attempt();
  expect({ status: res.status, error: res.body['error'] }).toEqual({ status, error: reason });
  expect(await t.db.fingerprint()).toEqual(before);
  expect(t.app.calls).toEqual(calls);
  expect(JSON.stringify(res.body)).not.toMatch(/at \w+ \(|node_modules|stack/);
  tally.refused++;
}

async function expectAccepted(attempt: () => Promise<Answer>, uid: string): Promise<void> {
  const res = await attempt();
  expect(res.status).toBe(200);
  expect(res.body['uid']).toBe(uid);
  expect(await t.db.sql('SELECT uid FROM maestrano_users WHERE tenant = $1 AND uid = $2', [MAIN, uid])).toEqual([{ uid }]);
  tally.accepted++;
}

describe.skipIf(unavailable !== null)('SAML attack matrix (test IdP, PostgreSQL storage)', () => {
  beforeAll(async () => {
    idp = createTestIdp();
    otherIdp = createTestIdp({ issuer: 'http://other-idp.test', commonName: 'other-idp.test' });
    t = await startSsoTarget({
      tenants: (appUrl) => [
        idp.marketplace({ name: MAIN, appHost: appUrl, apiId: 'app-rel-main', apiKey: 'rel-main-key' }),
        otherIdp.marketplace({ name: OTHER, appHost: appUrl, apiId: 'app-rel-other', apiKey: 'rel-other-key' }),
        idp.marketplace({ name: SHARED, appHost: appUrl, apiId: 'app-rel-shared', apiKey: 'rel-shared-key' }),
      ],
    });
  });
  afterAll(async () => {
    report({ area: 'saml', name: 'test IdP matrix', casesTried: tally.tried, refusedCorrectly: tally.refused, acceptedCorrectly: tally.accepted });
    await t?.close();
  });

  describe('signature wrapping', () => {
    for (const variant of XSW_VARIANTS) {
      it(`${variant} is refused (signature)`, async () => {
        const responseLevel = variant === 'XSW1' || variant === 'XSW2';
        await expectRefused(
          () =>
            t.loginXml(idp, MAIN, victim(), (xml) => xswVariant(variant, responseLevel ? signResponse(xml, idp) : xml, mallory), responseLevel ? { sign: false } : {}),
          400,
          'signature',
        );
      });
    }
    for (const layout of ['evilFirst', 'genuineInExtensions', 'genuineInsideEvil'] as const) {
      it(`test IdP layout ${layout} (same assertion ID) is refused (signature)`, async () => {
        await expectRefused(() => t.login(idp, MAIN, victim(), { xsw: { layout, evilUser: mallory } }), 400, 'signature');
      });
    }
    it('XSW3 with both assertions signed by the IdP (two genuine assertions) is refused', async () => {
      const other = idp.assertionXml({ ...mallory }, { acsUrl: t.acsUrl(MAIN) });
      await expectRefused(() => t.loginXml(idp, MAIN, victim(), (xml) => xml.replace('<samlp:Status>', `<samlp:Status>`).replace('</samlp:Status>', `</samlp:Status>${other}`)), 400, 'signature');
    });
  });

  describe('tampering, signatures and algorithms', () => {
    it('an attribute changed after signing is refused (signature)', async () => {
      await expectRefused(() => t.login(idp, MAIN, victim(), { mutateSigned: (xml) => tamperAttribute(xml, 'email', mallory.email) }), 400, 'signature');
    });
    it('NameID changed after signing is refused (signature)', async () => {
      const v = victim();
      await expectRefused(() => t.login(idp, MAIN, v, { mutateSigned: (xml) => xml.replace(`>${v.uid}</saml:NameID>`, `>${mallory.uid}</saml:NameID>`) }), 400, 'signature');
    });
    it('an unsigned assertion is refused (signature)', async () => {
      await expectRefused(() => t.login(idp, MAIN, victim(), { sign: false }), 400, 'signature');
    });
    it('a signature over the Response but not over the assertion is refused (signature)', async () => {
      await expectRefused(() => t.loginXml(idp, MAIN, victim(), (xml) => signResponse(xml, idp), { sign: false }), 400, 'signature');
    });
    it('control: a signature over the assertion but not over the Response (Maestrano layout) is accepted', async () => {
      const v = victim();
      await expectAccepted(() => t.login(idp, MAIN, v), v.uid);
    });
    it('control: both the Response and the assertion signed is accepted', async () => {
      const v = victim();
      await expectAccepted(() => t.loginXml(idp, MAIN, v, (xml) => signResponse(xml, idp)), v.uid);
    });
    it('control: rsa-sha1 (what the historical IdP used) is accepted', async () => {
      const v = victim();
      await expectAccepted(() => t.login(idp, MAIN, v, { algorithm: 'sha1' }), v.uid);
    });
    it('HMAC-SHA1 keyed with the public certificate (key confusion) is refused (signature)', async () => {
      await expectRefused(
        () => t.loginXml(idp, MAIN, victim(), (xml) => xml.replace(/<saml:Assertion [\s\S]*<\/saml:Assertion>/, (a) => signAssertionHmac(a, idp.certificate)), { sign: false }),
        400,
        'signature',
      );
    });
    it('SignatureMethod rewritten to rsa-md5 is refused (signature)', async () => {
      await expectRefused(() => t.login(idp, MAIN, victim(), { mutateSigned: (xml) => replaceAlgorithm(xml, 'SignatureMethod', 'http://www.w3.org/2001/04/xmldsig-more#rsa-md5') }), 400, 'signature');
    });
    it('DigestMethod rewritten to md5 is refused (signature)', async () => {
      await expectRefused(() => t.login(idp, MAIN, victim(), { mutateSigned: (xml) => replaceAlgorithm(xml, 'DigestMethod', 'http://www.w3.org/2001/04/xmldsig-more#md5') }), 400, 'signature');
    });
    it('signed by another key with its own certificate embedded is refused (certificate)', async () => {
      await expectRefused(() => t.login(otherIdp, MAIN, victim()), 400, 'certificate');
    });
    it('signed by another key while KeyInfo claims the pinned certificate is refused (signature)', async () => {
      await expectRefused(() => t.login(otherIdp, MAIN, victim(), { mutateSigned: (xml) => replaceEmbeddedCertificate(xml, idp.certificate) }), 400, 'signature');
    });
    it('a genuine signature whose KeyInfo carries another certificate is refused (embedded_certificate_mismatch)', async () => {
      await expectRefused(
        () => t.login(idp, MAIN, victim(), { mutateSigned: (xml) => replaceEmbeddedCertificate(xml, otherIdp.certificate) }),
        400,
        'embedded_certificate_mismatch',
      );
    });
    it('a genuine signature whose KeyInfo carries another bare public key (ds:KeyValue) is refused (embedded_certificate_mismatch)', async () => {
      await expectRefused(() => t.login(idp, MAIN, victim(), { mutateSigned: (xml) => addKeyValue(xml, otherIdp.certificate) }), 400, 'embedded_certificate_mismatch');
    });
    it('control: the pinned key also given as a bare ds:KeyValue is accepted', async () => {
      const v = victim();
      await expectAccepted(() => t.login(idp, MAIN, v, { mutateSigned: (xml) => addKeyValue(xml, idp.certificate) }), v.uid);
    });
    it('a genuine assertion in a Response signed by another key with its own certificate embedded is refused (embedded_certificate_mismatch)', async () => {
      await expectRefused(() => t.loginXml(idp, MAIN, victim(), (xml) => signResponse(xml, otherIdp)), 400, 'embedded_certificate_mismatch');
    });
    it("a genuine assertion in a Response whose own signature does not verify (SignatureValue altered) is refused (signature)", async () => {
      const broken = (xml: string) => signResponse(xml, idp).replace(/(<ds:SignatureValue>)([A-Za-z])/, (_m, open: string, first: string) => `${open}${first === 'A' ? 'B' : 'A'}`);
      await expectRefused(() => t.loginXml(idp, MAIN, victim(), broken), 400, 'signature');
    });
    it('a genuine assertion in a Response signed by another key without KeyInfo is refused (signature)', async () => {
      const foreign = (xml: string) => signResponse(xml, otherIdp).replace(/<ds:KeyInfo>[\s\S]*?<\/ds:KeyInfo>/, '');
      await expectRefused(() => t.loginXml(idp, MAIN, victim(), foreign), 400, 'signature');
    });
    it('a non-success status is refused (status)', async () => {
      await expectRefused(() => t.login(idp, MAIN, victim(), { status: 'urn:oasis:names:tc:SAML:2.0:status:Requester' }), 400, 'status');
    });
  });

  describe('comments inside signed values (C14N drops them, the signature stays valid)', () => {
    it('a comment inside NameID and inside the email attribute never truncates the identity', async () => {
      const v = victim();
      tally.tried++;
      const res = await t.login(idp, MAIN, v, {
        mutateSigned: (xml) => injectComment(injectComment(xml, 'NameID', 7), 'AttributeValue', 3),
      });
      // Either refused, or accepted as the full, genuine identity: never as a truncated uid.
      const truncated = v.uid.slice(0, 7);
      expect(await t.db.sql('SELECT uid FROM maestrano_users WHERE uid = $1', [truncated])).toEqual([]);
      if (res.status === 200) {
        expect(res.body['uid']).toBe(v.uid);
      } else {
        expect({ status: res.status, error: res.body['error'] }).toEqual({ status: 400, error: 'signature' });
        expect(await t.db.sql('SELECT uid FROM maestrano_users WHERE uid = $1', [v.uid])).toEqual([]);
      }
      tally.refused++;
    });
    it('a comment inside an attribute value of the group never splits the group uid', async () => {
      const v = { ...victim(), groupUid: 'cld-commented' };
      tally.tried++;
      const res = await t.login(idp, MAIN, v, { mutateSigned: (xml) => xml.replace('>cld-commented<', '>cld-<!---->commented<') });
      expect(await t.db.sql("SELECT group_id FROM maestrano_groups WHERE group_id = 'cld-'")).toEqual([]);
      if (res.status === 200) expect(await t.db.sql("SELECT group_id FROM maestrano_groups WHERE group_id = 'cld-commented'")).toHaveLength(1);
      else expect(res.body['error']).toBe('signature');
      tally.refused++;
    });
  });

  describe('DOCTYPE and entities', () => {
    const withDoctype = (doctype: string, useEntity?: string) => (xml: string) => {
      const body = useEntity ? xml.replace('<saml:AttributeValue>', `<saml:AttributeValue>${useEntity}`) : xml;
      return `<?xml version="1.0"?>${doctype}${body}`;
    };
    it('XXE (external entity to /etc/passwd) is refused (malformed)', async () => {
      await expectRefused(() => t.loginXml(idp, MAIN, victim(), withDoctype('<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', '&xxe;')), 400, 'malformed');
    });
    it('billion laughs is refused (malformed)', async () => {
      const lol = ['<!ENTITY lol "lol">', ...Array.from({ length: 9 }, (_v, i) => `<!ENTITY lol${i + 1} "${`&lol${i || ''};`.repeat(10)}">`)].join('');
      await expectRefused(() => t.loginXml(idp, MAIN, victim(), withDoctype(`<!DOCTYPE r [${lol}]>`, '&lol9;')), 400, 'malformed');
    });
    it('a DOCTYPE with unused entities is refused (malformed)', async () => {
      await expectRefused(() => t.loginXml(idp, MAIN, victim(), withDoctype('<!doctype r [<!ENTITY unused "x">]>')), 400, 'malformed');
    });
    it('a parameter-entity DOCTYPE (external DTD) is refused (malformed)', async () => {
      await expectRefused(() => t.loginXml(idp, MAIN, victim(), withDoctype('<!DOCTYPE r SYSTEM "http://127.0.0.1:1/evil.dtd">')), 400, 'malformed');
    });
    it('a UTF-16 encoded response is refused (malformed)', async () => {
      const started = await startLogin(t.initUrl(MAIN));
      const request = idp.parseAuthnRequest(started.location);
      const xml = idp.responseXml(victim(), { acsUrl: request.acsUrl, inResponseTo: request.id });
      const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(`<?xml version="1.0" encoding="UTF-16"?>${xml}`, 'utf16le')]).toString('base64');
      await expectRefused(() => t.post(MAIN, utf16, started.cookie), 400, 'malformed');
    });
  });

  describe('responses moved between requests, tenants and endpoints', () => {
    it("a victim's assertion moved into a response answering the attacker's own request is refused (in_response_to)", async () => {
      const victimLogin = await startLogin(t.initUrl(MAIN));
      const victimReq = idp.parseAuthnRequest(victimLogin.location);
      const victimXml = idp.responseXml(victim(), { acsUrl: victimReq.acsUrl, inResponseTo: victimReq.id });
      const attacker = await startLogin(t.initUrl(MAIN));
      const attackerReq = idp.parseAuthnRequest(attacker.location);
      const attackerXml = idp.responseXml(mallory, { acsUrl: attackerReq.acsUrl, inResponseTo: attackerReq.id });
      await expectRefused(() => t.post(MAIN, b64(moveAssertion(victimXml, attackerXml)), attacker.cookie), 400, 'in_response_to');
    });
    it('an unsolicited assertion wrapped in a Response claiming InResponseTo of the attacker\'s request is refused (in_response_to)', async () => {
      const unsolicited = idp.responseXml(victim(), { acsUrl: t.acsUrl(MAIN), inResponseTo: null });
      const attacker = await startLogin(t.initUrl(MAIN));
      const attackerReq = idp.parseAuthnRequest(attacker.location);
      const envelope = idp.responseXml(mallory, { acsUrl: attackerReq.acsUrl, inResponseTo: attackerReq.id, sign: false });
      // The Response's InResponseTo is unsigned; the signed assertion answers no request.
      const forged = moveAssertion(unsolicited, envelope.replace(/<saml:SubjectConfirmationData InResponseTo="[^"]*"/, '<saml:SubjectConfirmationData'));
      await expectRefused(() => t.post(MAIN, b64(forged), attacker.cookie), 400, 'in_response_to');
    });
    it('a response for this tenant posted to a tenant trusting another IdP is refused (destination)', async () => {
      const started = await startLogin(t.initUrl(OTHER));
      const request = idp.parseAuthnRequest(started.location);
      await expectRefused(() => t.post(OTHER, idp.response(victim(), { acsUrl: t.acsUrl(MAIN), inResponseTo: request.id }), started.cookie), 400, 'destination');
    });
    it("a response made for another tenant's endpoints by an IdP that tenant does not trust is refused (certificate)", async () => {
      await expectRefused(() => t.login(idp, OTHER, victim()), 400, 'certificate');
    });
    it('a response for this tenant posted to another tenant of the same IdP is refused (destination)', async () => {
      const started = await startLogin(t.initUrl(SHARED));
      const request = idp.parseAuthnRequest(started.location);
      await expectRefused(() => t.post(SHARED, idp.response(victim(), { acsUrl: t.acsUrl(MAIN), inResponseTo: request.id }), started.cookie), 400, 'destination');
    });
    it('the same without Response@Destination is refused (recipient)', async () => {
      const started = await startLogin(t.initUrl(SHARED));
      const request = idp.parseAuthnRequest(started.location);
      await expectRefused(
        () => t.post(SHARED, idp.response(victim(), { acsUrl: t.acsUrl(MAIN), inResponseTo: request.id, destination: null }), started.cookie),
        400,
        'recipient',
      );
    });
    it('another audience is refused (audience)', async () => {
      await expectRefused(() => t.login(idp, MAIN, victim(), { audience: 'https://other-sp.example' }), 400, 'audience');
    });
    it('another recipient is refused (recipient)', async () => {
      await expectRefused(() => t.login(idp, MAIN, victim(), { recipient: 'https://other-sp.example/acs' }), 400, 'recipient');
    });
    it('another Destination is refused (destination)', async () => {
      await expectRefused(() => t.login(idp, MAIN, victim(), { destination: 'https://other-sp.example/acs' }), 400, 'destination');
    });
    it('IdP-initiated (unsolicited) responses are refused when not allowed (in_response_to)', async () => {
      await expectRefused(() => t.post(MAIN, idp.response(victim(), { acsUrl: t.acsUrl(MAIN) })), 400, 'in_response_to');
    });
    it('an assertion without AudienceRestriction is refused (audience)', async () => {
      const started = await startLogin(t.initUrl(MAIN));
      const request = idp.parseAuthnRequest(started.location);
      const v = victim();
      const assertion = buildAssertionXml({ issuer: idp.issuer, nameId: v.uid, attributes: maestranoAttributes(v), recipient: request.acsUrl, inResponseTo: request.id }).replace(
        /<saml:AudienceRestriction>[\s\S]*?<\/saml:AudienceRestriction>/,
        '',
      );
      const xml = buildResponseXml([signAssertion(assertion, idp)], { issuer: idp.issuer, destination: request.acsUrl, inResponseTo: request.id });
      await expectRefused(() => t.post(MAIN, b64(xml), started.cookie), 400, 'audience');
    });
  });

  describe('validity windows around the clock skew (3 min)', () => {
    const margin = 20_000;
    const lifetime = 180_000; // SubjectConfirmationData NotOnOrAfter = issue + 3 min
    it('expired by skew + 20 s is refused (expired)', async () => {
      await expectRefused(() => t.login(idp, MAIN, victim(), { now: new Date(Date.now() - lifetime - SKEW - margin) }), 400, 'expired');
    });
    it('control: expired by skew - 20 s is still accepted', async () => {
      const v = victim();
      await expectAccepted(() => t.login(idp, MAIN, v, { now: new Date(Date.now() - lifetime - SKEW + margin) }), v.uid);
    });
    it('Conditions@NotOnOrAfter past by skew + 20 s is refused (expired)', async () => {
      await expectRefused(() => t.login(idp, MAIN, victim(), { conditionsLifetimeMs: -(SKEW + margin) }), 400, 'expired');
    });
    it('not yet valid by skew + 20 s is refused (not_yet_valid)', async () => {
      await expectRefused(() => t.login(idp, MAIN, victim(), { now: new Date(Date.now() + SKEW + margin), notBeforeOffsetMs: 0 }), 400, 'not_yet_valid');
    });
    it('control: not yet valid by skew - 20 s is accepted', async () => {
      const v = victim();
      await expectAccepted(() => t.login(idp, MAIN, v, { now: new Date(Date.now() + SKEW - margin), notBeforeOffsetMs: 0 }), v.uid);
    });
  });

  describe('replay and size', () => {
    it('a replay after a restart is refused (replay cache is persistent)', async () => {
      const v = victim();
      const started = await startLogin(t.initUrl(MAIN, v.groupUid));
      const { samlResponse } = idp.respondTo(started.location, v);
      const first = await t.post(MAIN, samlResponse, started.cookie);
      expect(first.status).toBe(200);
      tally.accepted++;
      await t.restart();
      await expectRefused(() => t.post(MAIN, samlResponse, started.cookie), 400, 'replay');
    });
    it('a 10 MB SAMLResponse is refused with 413 before any parsing', async () => {
      const started = await startLogin(t.initUrl(MAIN));
      const request = idp.parseAuthnRequest(started.location);
      const xml = idp.responseXml(victim(), { acsUrl: request.acsUrl, inResponseTo: request.id });
      const padded = xml.replace('</samlp:Response>', `<!--${'x'.repeat(10 * 1024 * 1024)}--></samlp:Response>`);
      await expectRefused(() => t.post(MAIN, b64(padded), started.cookie), 413, 'payload_too_large');
    });
  });
});
