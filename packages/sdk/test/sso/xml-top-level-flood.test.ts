/**
 * xmldom 0.8 checks every node added to the Document against all the Document's children, so a
 * document with many top-level nodes costs quadratic time to parse. Two ways to get there within
 * the ACS body limit, without any credential:
 * - comments or processing instructions around the root (well-formed XML: no parser error):
 *   40,000 of them took ~30 s of blocked event loop in our parse alone, and the document then
 *   went on to node-saml and xml-crypto, which parse it again;
 * - extra root elements: each is a parser error, but the error handler only noted the first one
 *   and let the parser go on through all the others (80,000 `<a/>` after a genuine response:
 *   ~160 s of blocked event loop through the ACS on a 2-core machine; a full 1 MiB body:
 *   many minutes), for every route of the app since the event loop is blocked.
 * Such documents are now refused before parsing (comments/PIs are counted), and the parser stops
 * at its first problem.
 */
import { DOMParser } from '@xmldom/xmldom';
import type { TestUser } from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Harness, startHarness } from './harness.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100' };
const b64 = (xml: string) => Buffer.from(xml).toString('base64');

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

async function genuine(): Promise<{ xml: string; cookie: string }> {
  const started = await h.init(h.tenant, `?group_id=${alice.groupUid}`);
  const request = h.idp.parseAuthnRequest(started.location);
  return { xml: h.idp.responseXml(alice, { acsUrl: request.acsUrl, inResponseTo: request.id }), cookie: started.cookie };
}

describe('ACS: documents with many top-level nodes', () => {
  it('a genuine response wrapped in thousands of comments or processing instructions is refused as malformed before parsing', async () => {
    for (const filler of [' <!---->', '<?pad?>']) {
      const { xml, cookie } = await genuine();
      // Small enough that the parsers get through it quickly; the count alone refuses it.
      const padded = `${filler.repeat(2_500)}${xml}${filler.repeat(2_500)}`;
      const res = await h.post(b64(padded), { cookie });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: 'malformed' });
      expect(h.logins).toHaveLength(0);
    }
    // The same genuine response without the padding (and an XML declaration) logs in.
    const { xml, cookie } = await genuine();
    const ok = await h.post(b64(`<?xml version="1.0" encoding="UTF-8"?>\n<!-- issued by the IdP -->\n${xml}`), { cookie });
    expect(ok.status).toBe(200);
  });

  it('extra root elements after a response stop the parser at the first one (it went through each, in quadratic time: minutes of blocked event loop for 80,000)', async () => {
    // Counted as work, not time: the elements the parser builds. xmldom builds each extra root
    // before refusing it, so a parser that goes on builds one per extra root.
    const proto = Object.getPrototypeOf(new DOMParser().parseFromString('<r/>', 'text/xml')) as { createElementNS: (...args: unknown[]) => unknown };
    const built = vi.spyOn(proto, 'createElementNS');
    try {
      const { xml, cookie } = await genuine();
      const inResponse = new DOMParser().parseFromString(xml, 'text/xml').getElementsByTagNameNS('*', '*').length;
      built.mockClear();
      const loginsBefore = h.logins.length;
      const res = await h.post(b64(`${xml}${'<a/>'.repeat(2_000)}`), { cookie });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: 'malformed' });
      // The response's own elements and the first extra root, not 2,000 more.
      expect(built.mock.calls.length).toBeLessThanOrEqual(inResponse + 1);
      expect(h.logins).toHaveLength(loginsBefore);
    } finally {
      built.mockRestore();
    }
  });
});
