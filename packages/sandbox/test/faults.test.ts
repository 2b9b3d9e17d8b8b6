import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../src/index.js';
import { basic } from './helpers.js';

describe('fault injection (admin API)', () => {
  let sb: Sandbox;
  let auth: string;
  const path = '/api/v2/cld-sbx1/people';

  beforeAll(async () => {
    sb = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:9', seed: 200 });
    const m = sb.credentials.marketplaces[0];
    auth = basic(m?.apiId ?? '', m?.apiKey ?? '');
  });
  afterAll(() => sb.stop());

  const get = (p = path) => fetch(`${sb.url}${p}?$top=5`, { headers: { authorization: auth } });

  it('rate-limit - 429 with Retry-After for the next `count` matching requests only', async () => {
    const rule = await sb.admin.addFault({ path: '/api/v2/*/people', kind: 'rate-limit', retryAfterSeconds: 7, count: 2 });
    const first = await get();
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('7');
    expect(((await first.json()) as { errors: Array<{ status: string }> }).errors[0]?.status).toBe('429');
    expect((await get()).status).toBe(429);
    expect((await get()).status).toBe(200);
    expect((await get('/api/v2/cld-sbx1/items')).status).toBe(200);
    expect((await sb.admin.faults()).find((f) => f.id === rule.id)).toMatchObject({ hits: 2, count: 0 });
    await sb.admin.clearFaults();
  });

  it('status - 5xx with a JSON:API error body, only for the given method', async () => {
    await sb.admin.addFault({ path: '/api/v2/*', method: 'POST', kind: 'status', status: 503, count: 1 });
    expect((await get()).status).toBe(200);
    const post = await fetch(`${sb.url}${path}`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ people: { first_name: 'Never' } }) });
    expect(post.status).toBe(503);
    const people = await sb.admin.listRecords('cld-sbx1', 'people', { limit: 10_000 });
    expect(people.some((p) => p.first_name === 'Never')).toBe(false);
    await sb.admin.clearFaults();
  });

  it('drop - the connection is closed without an answer', async () => {
    await sb.admin.addFault({ path, kind: 'drop', count: 1 });
    await expect(get()).rejects.toThrow(TypeError);
    expect((await get()).status).toBe(200);
  });

  it('truncate - the JSON body is cut in half', async () => {
    await sb.admin.addFault({ path, kind: 'truncate', count: 1 });
    const res = await get();
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(() => JSON.parse(text)).toThrow(SyntaxError);
    const full = await (await get()).text();
    expect(full.startsWith(text)).toBe(true);
    expect(JSON.parse(full)).toHaveProperty('people');
  });

  it('latency - the request is delayed and then answered normally', async () => {
    const rule = await sb.admin.addFault({ path, kind: 'latency', latencyMs: 150, count: 1 });
    const res = await get();
    expect(res.status).toBe(200);
    expect(((await res.json()) as { people: unknown[] }).people).toHaveLength(5);
    expect((await sb.admin.faults()).find((f) => f.id === rule.id)?.hits).toBe(1);
  });

  it('latency - the delayed request is still unanswered after its fault fired and other requests were answered', async () => {
    const rule = await sb.admin.addFault({ path, kind: 'latency', latencyMs: 600_000, count: 1 });
    const abort = new AbortController();
    const delayed = fetch(`${sb.url}${path}?$top=5`, { headers: { authorization: auth }, signal: abort.signal }).then(
      (res) => ({ answered: res.status }),
      (error: unknown) => ({ failed: error }),
    );
    const hits = async () => (await sb.admin.faults()).find((f) => f.id === rule.id)?.hits;
    for (let i = 0; i < 500 && (await hits()) === 0; i++) await new Promise((r) => setImmediate(r));
    expect(await hits()).toBe(1);
    // The sandbox goes on answering other requests, sent after the fault fired, while this one waits.
    for (let i = 0; i < 3; i++) expect((await get('/api/v2/cld-sbx1/items')).status).toBe(200);
    const pending = Symbol('pending');
    expect(await Promise.race([delayed, Promise.resolve(pending)])).toBe(pending);
    // Released by the client: it ends aborted, never answered.
    abort.abort();
    expect(await delayed).toEqual({ failed: expect.objectContaining({ name: 'AbortError' }) });
    await sb.admin.removeFault(rule.id);
  });

  it('rate - rate 0 never fires, rate 1 always fires', async () => {
    const never = await sb.admin.addFault({ path, kind: 'status', status: 500, rate: 0 });
    for (let i = 0; i < 5; i++) expect((await get()).status).toBe(200);
    await sb.admin.removeFault(never.id);
    await sb.admin.addFault({ path, kind: 'status', status: 502, rate: 1 });
    for (let i = 0; i < 3; i++) expect((await get()).status).toBe(502);
    await sb.admin.clearFaults();
    expect((await get()).status).toBe(200);
  });

  it('invalid fault definitions are refused with 400 and change nothing', async () => {
    const before = (await sb.admin.faults()).length;
    await expect(sb.admin.addFault({ path: 'no-slash', kind: 'drop' })).rejects.toMatchObject({ status: 400 });
    await expect(sb.admin.addFault({ path: '/x', kind: 'status', status: 200 })).rejects.toMatchObject({ status: 400 });
    await expect(sb.admin.addFault({ path: '/x', kind: 'drop', rate: 2 })).rejects.toMatchObject({ status: 400 });
    expect((await sb.admin.faults()).length).toBe(before);
  });
});
