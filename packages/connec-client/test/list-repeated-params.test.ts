/**
 * Repeated list parameters (PROTOCOL §6.4 `mappings[]`: one JSON item per app to include or
 * exclude): an array in `params` is sent as one parameter per value, on every page.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createConnecClient } from '../src/index.js';

const GROUP = 'cld-9a1b';
/** Which app groups each record is mapped to. */
const PEOPLE = [
  { id: 'p1', first_name: 'A', mapped: ['cld-crm', 'cld-erp'] },
  { id: 'p2', first_name: 'B', mapped: ['cld-crm'] },
  { id: 'p3', first_name: 'C', mapped: ['cld-crm', 'cld-erp'] },
  { id: 'p4', first_name: 'D', mapped: ['cld-erp'] },
  { id: 'p5', first_name: 'E', mapped: ['cld-crm', 'cld-erp', 'cld-pos'] },
  { id: 'p6', first_name: 'F', mapped: ['cld-crm', 'cld-erp'] },
];

interface Mapping {
  group_id: string;
  include?: boolean;
  exclude?: boolean;
}

let server: Server;
let url: string;
let queries: URLSearchParams[];
let writeNext: boolean;

beforeEach(async () => {
  queries = [];
  writeNext = true;
  server = createServer((req, res) => {
    const requestUrl = new URL(req.url ?? '/', url);
    queries.push(requestUrl.searchParams);
    // Every `mappings[]` item applies (and-ed), as Connec!'s app-mapping filter does.
    let mappings: Mapping[];
    try {
      mappings = requestUrl.searchParams.getAll('mappings[]').map((raw) => JSON.parse(raw) as Mapping);
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ status: '400', title: 'mappings[] item is not JSON' }] }));
      return;
    }
    const selected = PEOPLE.filter((p) => mappings.every((m) => (m.exclude ? !p.mapped.includes(m.group_id) : p.mapped.includes(m.group_id))));
    const top = Number(requestUrl.searchParams.get('$top') ?? 100);
    const skip = Number(requestUrl.searchParams.get('$skip') ?? 0);
    const pagination: Record<string, unknown> = { total: selected.length };
    if (writeNext && skip + top < selected.length) {
      const next = new URLSearchParams(requestUrl.searchParams);
      next.set('$skip', String(skip + top));
      pagination.next = `${url}${requestUrl.pathname}?${next.toString()}`;
    }
    const people = selected.slice(skip, skip + top).map(({ mapped: _mapped, ...p }) => ({ ...p, group_id: GROUP }));
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ people, pagination }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function people() {
  return createConnecClient({ host: url, credentials: { apiId: 'app-1', apiKey: 'key-1' }, retry: 0 }).group(GROUP).people;
}

const include = JSON.stringify({ group_id: 'cld-crm', include: true });
const exclude = JSON.stringify({ group_id: 'cld-pos', exclude: true });

describe('list() params with an array value', () => {
  it('sends the parameter once per value, in order, on every page (pagination.next)', async () => {
    const listed = await people()
      .list({ top: 2, params: { 'mappings[]': [include, exclude], sso_session: 'tok' } })
      .toArray({ limit: 100 });
    expect(listed.map((p) => p.first_name)).toEqual(['A', 'B', 'C', 'F']);
    expect(queries).toHaveLength(2);
    for (const query of queries) {
      expect(query.getAll('mappings[]')).toEqual([include, exclude]);
      expect(query.getAll('sso_session')).toEqual(['tok']);
    }
    expect(queries.map((q) => q.get('$skip'))).toEqual([null, '2']);
  });

  it('keeps every value when the client pages by $skip itself (no pagination.next)', async () => {
    writeNext = false;
    const listed = await people()
      .list({ top: 1, params: { 'mappings[]': [include, JSON.stringify({ group_id: 'cld-erp', include: true }), exclude] } })
      .toArray({ limit: 100 });
    expect(listed.map((p) => p.first_name)).toEqual(['A', 'C', 'F']);
    expect(queries).toHaveLength(3);
    for (const query of queries) expect(query.getAll('mappings[]')).toHaveLength(3);
    expect(queries.map((q) => q.get('$skip'))).toEqual([null, '1', '2']);
  });

  it('an empty array sends no parameter; a string is sent once, as before', async () => {
    const all = await people().list({ params: { 'mappings[]': [] } });
    expect(all.data).toHaveLength(6);
    const one = await people().list({ params: { 'mappings[]': include } });
    expect(one.data.map((p) => p.first_name)).toEqual(['A', 'B', 'C', 'E', 'F']);
    expect(queries.map((q) => q.getAll('mappings[]'))).toEqual([[], [include]]);
  });
});
