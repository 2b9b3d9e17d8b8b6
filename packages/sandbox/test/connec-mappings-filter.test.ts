/**
 * `mappings[]` (PROTOCOL §6.4) is a Connec! list option: it keeps only the records mapped (or not
 * mapped) to the app instances it names. The sandbox does not implement it; ignoring it answered
 * every record, so a client relying on it passed here and got other records from Connec!.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../src/index.js';
import { basic } from './helpers.js';

describe('Connec! mappings[] list option (PROTOCOL §6.4)', () => {
  let sb: Sandbox;
  let auth: string;
  const group = 'cld-sbx1';

  beforeAll(async () => {
    sb = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:9', seed: 50 });
    const m = sb.credentials.marketplaces[0];
    if (!m) throw new Error('marketplace');
    auth = basic(m.apiId, m.apiKey);
  });
  afterAll(() => sb.stop());

  const list = async (query: string) => {
    const res = await fetch(`${sb.url}/api/v2/${group}/people?${query}`, { headers: { authorization: auth } });
    return { status: res.status, text: await res.text() };
  };

  it('is refused with 400 invalid-query, not ignored (which answered every record)', async () => {
    const item = encodeURIComponent(JSON.stringify({ group_id: 'cld-other', include: true }));
    for (const query of [`mappings[]=${item}`, `mappings%5B%5D=${item}&$top=1`, `mappings=${item}`]) {
      const res = await list(query);
      expect(res.status, query).toBe(400);
      expect(res.text, query).toContain('invalid-query');
      expect(res.text, query).toContain('mappings[]');
    }
    // Other parameters are still left alone.
    expect((await list('$top=1&utm=x')).status).toBe(200);
  });
});
