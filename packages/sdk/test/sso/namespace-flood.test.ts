/**
 * The Response element around a signed assertion is not signed, so anyone holding one of their
 * own old responses (or none: a Response signed by any key) can add tens of thousands of
 * namespace declarations within the body limit. xml-crypto canonicalised the signed part
 * against all of them in worse than linear time: 5 to 10 s of blocked event loop per POST, for
 * every route of the app, before the replay or time checks refused it. Such documents are now
 * refused as malformed before the signature is looked at (the reason names the limit).
 */
import { createTestCertificate, type TestUser } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';
import { startHarness } from './harness.js';
import { signResponse } from './sign-response.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100' };


/** `count` extra attributes on the Response element, each `<prefix><i>="u"`. */
const widen = (xml: string, count: number, prefix: string) =>
  xml.replace('<samlp:Response ', `<samlp:Response${Array.from({ length: count }, (_, i) => ` ${prefix}${i}="u"`).join('')} `);
const b64 = (xml: string) => Buffer.from(xml).toString('base64');

describe('ACS: a Response widened with attributes or namespace declarations', () => {
  it('a genuine response replayed with 40,000 xmlns declarations is refused as malformed, before the signature check', async () => {
    const h = await startHarness({ sso: { allowIdpInitiated: true } });
    try {
      const xml = h.idp.responseXml(alice, { acsUrl: h.acsUrl });
      expect((await h.post(b64(xml))).status).toBe(200);
      const res = await h.post(b64(widen(xml, 40_000, 'xmlns:n')));
      expect(res.status).toBe(400);
      // Not `replay`: refused before node-saml canonicalised anything.
      expect(res.body).toMatchObject({ error: 'malformed' });
    } finally {
      await h.close();
    }
  }, 120_000);

  it('an unsigned assertion in a Response signed by any key, widened the same way, is refused as malformed', async () => {
    const h = await startHarness();
    try {
      const xml = signResponse(h.idp.responseXml(alice, { acsUrl: h.acsUrl, sign: false }), createTestCertificate());
      const res = await h.post(b64(widen(xml, 40_000, 'xmlns:n')));
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: 'malformed' });
    } finally {
      await h.close();
    }
  }, 120_000);

  it('thousands of plain attributes on one element are refused as malformed; a few extra declarations still log in', async () => {
    const h = await startHarness({ sso: { allowIdpInitiated: true } });
    try {
      const wide = await h.post(b64(widen(h.idp.responseXml(alice, { acsUrl: h.acsUrl }), 5_000, 'a')));
      expect(wide.status).toBe(400);
      expect(wide.body).toMatchObject({ error: 'malformed' });
      // An IdP declaring a handful of unused namespaces on the Response is fine.
      const ok = await h.post(b64(widen(h.idp.responseXml(alice, { acsUrl: h.acsUrl }), 20, 'xmlns:x')));
      expect(ok.status).toBe(200);
    } finally {
      await h.close();
    }
  }, 120_000);
});
