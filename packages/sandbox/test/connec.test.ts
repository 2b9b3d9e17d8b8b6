import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../src/index.js';
import { basic } from './helpers.js';

type Rec = Record<string, unknown>;
interface IdMap {
  id: string;
  provider: string;
  realm: string;
}

describe('Connec! API (PROTOCOL §6)', () => {
  let sb: Sandbox;
  let auth: string;
  const group = 'cld-sbx1';

  const api = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(path.startsWith('http') ? path : `${sb.url}${path}`, {
      method,
      headers: { authorization: auth, accept: 'application/vnd.api+json', ...(body === undefined ? {} : { 'content-type': 'application/vnd.api+json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : null) as Record<string, unknown> };
  };
  const ext = { 'CONNEC-EXTERNAL-IDS': 'true' };

  const fetchAll = async (first: string, key: string, headers: Record<string, string> = {}) => {
    const records: Rec[] = [];
    let next: string | undefined = first;
    let pages = 0;
    let total = -1;
    while (next) {
      const res = await api('GET', next, undefined, headers);
      expect(res.status).toBe(200);
      const page = res.body[key] as Rec[];
      records.push(...page);
      const pagination = res.body.pagination as { next?: string; total: number };
      total = pagination.total;
      if (pagination.next) expect(pagination.next.startsWith(`${sb.url}/api/v2/`)).toBe(true);
      next = pagination.next;
      pages++;
    }
    return { records, pages, total };
  };

  beforeAll(async () => {
    sb = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:9', seed: 3000 });
    const m = sb.credentials.marketplaces[0];
    if (!m) throw new Error('marketplace');
    auth = basic(m.apiId, m.apiKey);
  });
  afterAll(() => sb.stop());

  it('auth - bad credentials, unknown groups and groups of another app answer 401 Unauthorized Access', async () => {
    const bad = await api('GET', `/api/v2/${group}/people`, undefined, { authorization: basic('x', 'y') });
    expect(bad.status).toBe(401);
    const errors = bad.body.errors as Rec[];
    expect(errors[0]).toMatchObject({ status: '401', title: 'Unauthorized Access' });
    expect(errors[0]?.id).toEqual(expect.any(String));
    expect(errors[0]?.href).toEqual(expect.stringContaining('http://maestrano.github.io/connec/#'));
    expect((await api('GET', '/api/v2/cld-unknown/people')).status).toBe(401);
  });

  it('errors - unknown collection 400, missing record 404, POST with id 409, no DELETE', async () => {
    const unknown = await api('GET', `/api/v2/${group}/spaceships`);
    expect(unknown.status).toBe(400);
    expect((unknown.body.errors as Rec[])[0]?.title).toBe('Unknown Resource');
    const missing = await api('GET', `/api/v2/${group}/people/00000000-0000-4000-8000-000000000000`);
    expect(missing.status).toBe(404);
    expect((missing.body.errors as Rec[])[0]).toMatchObject({ status: '404', code: 'resource-not-found' });
    // Refused writes store nothing and notify nobody, whoever sends them (the group's own app,
    // never notified back, or another app, whose changes are notified).
    const other = await sb.admin.createOtherApp({ groupIds: [group], name: 'Refused writes' });
    const otherAuth = { authorization: basic(other.apiId, other.apiKey) };
    const snapshot = async () => ({
      people: await sb.admin.listRecords(group, 'people', { limit: 100_000, externalIds: true }),
      // What was sent, not how its attempts go (the app at port 9 never answers them).
      deliveries: (await sb.admin.waitForDeliveries(200)).deliveries.map((d) => ({ id: d.id, kind: d.kind, url: d.url, body: d.body })),
    });
    const before = await snapshot();
    const refusedWrites: [number, unknown][] = [
      [409, { people: { id: 'abc', first_name: 'X' } }],
      [409, { people: { id: [{ id: 'c-1', provider: 'connec', realm: 'org-x' }], first_name: 'X' } }],
      [400, { people: { id: [{ id: 'no-provider' }], first_name: 'X' } }],
      [400, { person: { first_name: 'X' } }],
    ];
    for (const [status, body] of refusedWrites) {
      for (const headers of [{}, otherAuth]) {
        const res = await api('POST', `/api/v2/${group}/people`, body, headers);
        expect(res.status, JSON.stringify(body)).toBe(status);
        expect(await snapshot(), JSON.stringify(body)).toEqual(before);
      }
    }
    // Control: the same write, accepted from the other app, is stored and notified.
    const accepted = await api('POST', `/api/v2/${group}/people`, { people: { first_name: 'Accepted' } }, otherAuth);
    expect(accepted.status).toBe(201);
    const after = await snapshot();
    expect(after.people).toHaveLength(before.people.length + 1);
    expect(after.deliveries.map((d) => d.kind)).toEqual([...before.deliveries.map((d) => d.kind), 'connec.notification']);
    const list = await api('GET', `/api/v2/${group}/people?$top=1`);
    const someId = String(((list.body.people as Rec[])[0] as Rec).id);
    const del = await api('DELETE', `/api/v2/${group}/people/${someId}`);
    expect(del.status).toBe(405);
    expect((await api('GET', `/api/v2/${group}/people/${someId}`)).status).toBe(200);
  });

  it('paging - following pagination.next (absolute) visits every record exactly once and total is the count', async () => {
    const all = await sb.admin.listRecords(group, 'invoices', { limit: 100_000 });
    const { records, pages, total } = await fetchAll(`/api/v2/${group}/invoices?$top=100`, 'invoices');
    expect(total).toBe(all.length);
    expect(records.length).toBe(all.length);
    expect(new Set(records.map((r) => r.id)).size).toBe(all.length);
    expect(pages).toBe(Math.ceil(all.length / 100));
    const page = await api('GET', `/api/v2/${group}/invoices?$top=7&$skip=14`);
    expect((page.body.invoices as Rec[]).map((r) => r.id)).toEqual(all.slice(14, 21).map((r) => r.id));
    const defaultPage = await api('GET', `/api/v2/${group}/invoices`);
    expect((defaultPage.body.invoices as Rec[]).length).toBe(100);
    expect((await api('GET', `/api/v2/${group}/invoices?$top=abc`)).status).toBe(400);
  });

  it('$filter - eq/ne/gt/lt/gte/lte/match/null with and, checked against the full data set', async () => {
    const people = await sb.admin.listRecords(group, 'people', { limit: 100_000 });
    const orgs = await sb.admin.listRecords(group, 'organizations', { limit: 100_000 });
    const check = async (filter: string, expected: (r: Rec) => boolean, source: Rec[], coll: string) => {
      const { records, total } = await fetchAll(`/api/v2/${group}/${coll}?$top=250&$filter=${encodeURIComponent(filter)}`, coll);
      const want = source.filter(expected).map((r) => r.id);
      expect(want.length, filter).toBeGreaterThan(0);
      expect(records.map((r) => r.id), filter).toEqual(want);
      expect(total, filter).toBe(want.length);
    };
    const firstName = String(people[3]?.first_name);
    await check(`first_name eq '${firstName}'`, (r) => r.first_name === firstName, people, 'people');
    await check(`first_name ne '${firstName}' and is_customer eq true`, (r) => r.first_name !== firstName && r.is_customer === true, people, 'people');
    const mid = String(people[Math.floor(people.length / 2)]?.updated_at);
    await check(`updated_at gt '${mid}'`, (r) => Date.parse(String(r.updated_at)) > Date.parse(mid), people, 'people');
    await check(`updated_at lte '${mid}'`, (r) => Date.parse(String(r.updated_at)) <= Date.parse(mid), people, 'people');
    const items = await sb.admin.listRecords(group, 'items', { limit: 100_000 });
    await check('quantity_available gte 250 AND quantity_available lt 400', (r) => Number(r.quantity_available) >= 250 && Number(r.quantity_available) < 400, items, 'items');
    await check('name match /widgets/i', (r) => /widgets/i.test(String(r.name)), orgs, 'organizations');
    await check("status eq 'ARCHIVED'", (r) => r.status === 'ARCHIVED', orgs, 'organizations');
    const firstOrg = orgs[0];
    if (!firstOrg) throw new Error('no organizations');
    const city = String((firstOrg.address as { billing: { city: string } }).billing.city);
    await check(`address.billing.city eq '${city}'`, (r) => (r.address as { billing: { city: string } }).billing.city === city, orgs, 'organizations');
    const created = await api('POST', `/api/v2/${group}/people`, { people: { first_name: 'Orphan', last_name: "O'Neil", organization_id: null } });
    expect(created.status).toBe(201);
    const everyone = await sb.admin.listRecords(group, 'people', { limit: 100_000 });
    await check('organization_id eq null', (r) => r.organization_id === null || r.organization_id === undefined, everyone, 'people');
    await check("last_name eq 'O''Neil'", (r) => r.last_name === "O'Neil", everyone, 'people');
    for (const bad of ['first_name', 'first_name like x', "first_name eq 'open", 'a eq 1 or b eq 2']) {
      const res = await api('GET', `/api/v2/${group}/people?$filter=${encodeURIComponent(bad)}`);
      expect(res.status, bad).toBe(400);
    }
  });

  it('$orderby - ASC/DESC on plain and nested fields, combined with paging', async () => {
    const items = await sb.admin.listRecords(group, 'items', { limit: 100_000 });
    const { records } = await fetchAll(`/api/v2/${group}/items?$top=33&$orderby=${encodeURIComponent('sale_price.net_amount DESC')}`, 'items');
    const prices = records.map((r) => (r.sale_price as { net_amount: number }).net_amount);
    expect(prices).toEqual([...items.map((r) => (r.sale_price as { net_amount: number }).net_amount)].sort((a, b) => b - a));
    const asc = await api('GET', `/api/v2/${group}/items?$top=1000&$orderby=${encodeURIComponent('name ASC')}`);
    const names = (asc.body.items as Rec[]).map((r) => String(r.name));
    expect(names).toEqual([...names].sort());
    expect((await api('GET', `/api/v2/${group}/items?$orderby=${encodeURIComponent('name SIDEWAYS')}`)).status).toBe(400);
  });

  it('refuses query options it does not implement (400 invalid-query) instead of ignoring them', async () => {
    const people = await api('GET', `/api/v2/${group}/people?$top=1`);
    const id = String(((people.body.people as Rec[])[0] as Rec).id);
    for (const query of ['$search=zzz-nomatch', '$expand=matching_records', `$fitler=${encodeURIComponent("first_name eq 'zzz'")}`, '$top=1&$count=true']) {
      const res = await api('GET', `/api/v2/${group}/people?${query}`);
      expect(res.status, query).toBe(400);
      expect(JSON.stringify(res.body), query).toContain('invalid-query');
    }
    expect((await api('GET', `/api/v2/${group}/people/${id}?$expand=matching_records`)).status).toBe(400);
    // Parameters that are not `$` options are no Connec! query: left alone, as before.
    expect((await api('GET', `/api/v2/${group}/people?$top=1&utm=x`)).status).toBe(200);
    expect((await api('GET', `/api/v2/${group}/people/${id}`)).status).toBe(200);
  });

  it('create/update - 201 with Location, system fields, partial merge, updated_at strictly increasing', async () => {
    const created = await api('POST', `/api/v2/${group}/organizations`, { organizations: { name: 'Merge Co', address: { billing: { city: 'Perth', country: 'AU' } }, is_customer: true } });
    expect(created.status).toBe(201);
    const org = created.body.organizations as Rec;
    expect(created.headers.get('location')).toBe(`${sb.url}/api/v2/${group}/organizations/${org.id}`);
    expect(org).toMatchObject({ group_id: group, channel_id: 'org-sbx1', resource_type: 'organizations', name: 'Merge Co' });
    expect(String(org.id)).toMatch(/^[0-9a-f-]{36}$/);
    expect(org.created_at).toBe(org.updated_at);
    const updated = await api('PUT', `/api/v2/${group}/organizations/${org.id}`, { organizations: { address: { billing: { line1: '1 Hay St' } }, status: 'ARCHIVED' } });
    expect(updated.status).toBe(200);
    const u = updated.body.organizations as Rec;
    expect(u).toMatchObject({ name: 'Merge Co', is_customer: true, status: 'ARCHIVED', address: { billing: { city: 'Perth', country: 'AU', line1: '1 Hay St' } } });
    expect(Date.parse(String(u.updated_at))).toBeGreaterThan(Date.parse(String(org.updated_at)));
    expect(u.created_at).toBe(org.created_at);
    const again = await api('PUT', `/api/v2/${group}/organizations/${org.id}`, { organizations: { status: '' } });
    expect(Date.parse(String((again.body.organizations as Rec).updated_at))).toBeGreaterThan(Date.parse(String(u.updated_at)));
    const stored = await sb.admin.getRecord(group, 'organizations', String(org.id));
    expect(stored.status).toBe('');
    const company = await api('GET', `/api/v2/${group}/company`);
    expect(company.status).toBe(200);
    expect(company.body.company).toMatchObject({ resource_type: 'company', group_id: group });
    const putCompany = await api('PUT', `/api/v2/${group}/company`, { company: { website: { url: 'https://x.example' } } });
    expect((putCompany.body.company as Rec).website).toEqual({ url: 'https://x.example' });
    const links = await api('GET', `/api/v2/${group}`);
    expect(links.body._links).toEqual(expect.arrayContaining([{ organizations: { href: `/api/v2/${group}/organizations` } }]));
  });

  it('external ids - app ids stored per provider+realm round-trip, references resolve from either form, nested lines ids kept', async () => {
    const realm = 'acct-42';
    const orgRes = await api('POST', `/api/v2/${group}/organizations`, { organizations: { id: [{ id: 'O-1', provider: 'myapp', realm }], name: 'Ext Org' } }, ext);
    expect(orgRes.status).toBe(201);
    const orgIds = (orgRes.body.organizations as { id: IdMap[] }).id;
    const connecOrg = orgIds.find((i) => i.provider === 'connec');
    expect(connecOrg?.realm).toBe('org-sbx1');
    expect(orgIds).toContainEqual({ id: 'O-1', provider: 'myapp', realm });
    const dup = await api('POST', `/api/v2/${group}/organizations`, { organizations: { id: [{ id: 'O-1', provider: 'myapp', realm }], name: 'Dup' } }, ext);
    expect(dup.status).toBe(409);
    // a person referencing the org by the app's id, an item, then an invoice with lines in both forms
    const person = await api('POST', `/api/v2/${group}/people`, { people: { id: [{ id: 'P-1', provider: 'myapp', realm }], first_name: 'Ext', organization_id: [{ id: 'O-1', provider: 'myapp', realm }] } }, ext);
    const personPlain = await api('GET', `/api/v2/${group}/people/${((person.body.people as { id: IdMap[] }).id.find((i) => i.provider === 'connec') as IdMap).id}`);
    expect((personPlain.body.people as Rec).organization_id).toBe(connecOrg?.id);
    const item = await api('POST', `/api/v2/${group}/items`, { items: { name: 'Thing', code: 'T1' } });
    const itemId = String((item.body.items as Rec).id);
    const invoice = await api(
      'POST',
      `/api/v2/${group}/invoices`,
      {
        invoices: {
          id: [{ id: 'INV-9', provider: 'myapp', realm }],
          person_id: [{ id: 'P-1', provider: 'myapp', realm }],
          lines: [
            { id: [{ id: 'L-1', provider: 'myapp', realm }], item_id: [{ id: itemId, provider: 'connec', realm: 'org-sbx1' }], quantity: 2 },
            { item_id: itemId, quantity: 1 },
          ],
        },
      },
      ext,
    );
    expect(invoice.status).toBe(201);
    const inv = invoice.body.invoices as { id: IdMap[]; person_id: IdMap[]; lines: Array<{ id: IdMap[]; item_id: IdMap[] }> };
    expect(inv.person_id).toContainEqual({ id: 'P-1', provider: 'myapp', realm });
    expect(inv.lines[0]?.id).toContainEqual({ id: 'L-1', provider: 'myapp', realm });
    expect(inv.lines[0]?.item_id[0]).toEqual({ id: itemId, provider: 'connec', realm: 'org-sbx1' });
    expect(inv.lines[1]?.id[0]?.provider).toBe('connec');
    const invId = (inv.id.find((i) => i.provider === 'connec') as IdMap).id;
    // update a line by its app id: the same connec line id is kept
    const lineConnecId = inv.lines[0]?.id.find((i) => i.provider === 'connec')?.id;
    const upd = await api('PUT', `/api/v2/${group}/invoices/${invId}`, { invoices: { lines: [{ id: [{ id: 'L-1', provider: 'myapp', realm }], item_id: itemId, quantity: 5 }] } }, ext);
    const line = (upd.body.invoices as typeof inv).lines[0];
    expect(line?.id.find((i) => i.provider === 'connec')?.id).toBe(lineConnecId);
    // plain form of the same record: strings everywhere
    const plain = await api('GET', `/api/v2/${group}/invoices/${invId}`);
    const p = plain.body.invoices as Rec & { lines: Rec[] };
    expect(p.id).toBe(invId);
    expect(typeof p.person_id).toBe('string');
    expect(p.lines[0]).toMatchObject({ id: lineConnecId, item_id: itemId, quantity: 5 });
    // attach an app id to an existing record with PUT, then reference it by that id
    await api('PUT', `/api/v2/${group}/items/${itemId}`, { items: { id: [{ id: 'I-7', provider: 'myapp', realm }] } }, ext);
    const again = await api('GET', `/api/v2/${group}/items/${itemId}`, undefined, ext);
    expect((again.body.items as { id: IdMap[] }).id).toContainEqual({ id: 'I-7', provider: 'myapp', realm });
    // a rejected update (bad reference) binds nothing: the app id stays free for another record
    const rejected = await api('PUT', `/api/v2/${group}/items/${itemId}`, { items: { id: [{ id: 'I-9', provider: 'myapp', realm }], sale_tax_code_id: 42 } }, ext);
    expect(rejected.status).toBe(400);
    const afterReject = await api('POST', `/api/v2/${group}/items`, { items: { id: [{ id: 'I-9', provider: 'myapp', realm }], name: 'Second try' } }, ext);
    expect(afterReject.status).toBe(201);
    const unchanged = await api('GET', `/api/v2/${group}/items/${itemId}`, undefined, ext);
    expect((unchanged.body.items as { id: IdMap[] }).id.map((i) => i.id)).not.toContain('I-9');
    // the same external id in another collection is a different record
    const samePerson = await api('POST', `/api/v2/${group}/people`, { people: { id: [{ id: 'I-7', provider: 'myapp', realm }], first_name: 'Same id, other type' } }, ext);
    expect(samePerson.status).toBe(201);
  });

  it('batch - POST /batch at the host root runs ops in order with per-op status and body', async () => {
    const res = await fetch(`${sb.url}/batch`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        sequential: true,
        ops: [
          { method: 'post', url: `/api/v2/${group}/people/`, params: { people: { first_name: 'Batch', last_name: 'One' } } },
          { method: 'post', url: `/api/v2/${group}/spaceships/`, params: { spaceships: {} } },
          { method: 'put', url: `/api/v2/${group}/people/00000000-0000-4000-8000-000000000000`, params: { people: { first_name: 'Ghost' } } },
          { method: 'get', url: `/api/v2/cld-other/people` },
        ],
      }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { results: Array<{ status: number; body: Rec }> };
    expect(body.results.map((r) => r.status)).toEqual([201, 400, 404, 401]);
    const created = body.results[0]?.body.people as Rec;
    const stored = await sb.admin.getRecord(group, 'people', String(created.id));
    expect(stored).toMatchObject({ first_name: 'Batch', last_name: 'One' });
    const v2 = await fetch(`${sb.url}/api/v2/batch`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: '{"ops":[]}' });
    expect(v2.status).not.toBe(200);
    const unauth = await fetch(`${sb.url}/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"ops":[]}' });
    expect(unauth.status).toBe(401);
  });

  it('smart merging - a POST with opts.matching_fields updates the matching record (200) instead of creating a twin', async () => {
    const existing = await api('POST', `/api/v2/${group}/organizations`, { organizations: { name: 'Smart Merge Pty', code: 'SM1' } });
    expect(existing.status).toBe(201);
    const existingId = String((existing.body.organizations as Rec).id);
    const before = (await sb.admin.listRecords(group, 'organizations', { limit: 100_000 })).length;
    const app = { id: 'org-42', provider: 'app-x', realm: group };

    const merged = await api('POST', `/api/v2/${group}/organizations`, { organizations: { name: 'Smart Merge Pty', industry: 'Retail', id: [app], opts: { matching_fields: ['name'] } } }, ext);
    expect(merged.status).toBe(200);
    expect(merged.headers.get('location')).toBeNull();
    const record = merged.body.organizations as Rec;
    expect(record.id).toEqual([{ id: existingId, provider: 'connec', realm: expect.any(String) }, app]);
    expect(record).toMatchObject({ name: 'Smart Merge Pty', code: 'SM1', industry: 'Retail' });
    expect(await sb.admin.listRecords(group, 'organizations', { limit: 100_000 })).toHaveLength(before);

    // Through the batch endpoint as well; no match (or a matching field the payload lacks) creates.
    const res = await fetch(`${sb.url}/batch`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        sequential: true,
        ops: [
          { method: 'post', url: `/api/v2/${group}/organizations/`, params: { organizations: { name: 'Smart Merge Pty', opts: { matching_fields: ['name'] } } } },
          { method: 'post', url: `/api/v2/${group}/organizations/`, params: { organizations: { name: 'Nobody Like Me', opts: { matching_fields: ['name'] } } } },
          { method: 'post', url: `/api/v2/${group}/organizations/`, params: { organizations: { code: 'SM1', opts: { matching_fields: ['name'] } } } },
        ],
      }),
    });
    const body = (await res.json()) as { results: Array<{ status: number; body: Rec }> };
    expect(body.results.map((r) => r.status)).toEqual([200, 201, 201]);
    expect((body.results[0]?.body.organizations as Rec | undefined)?.id).toBe(existingId);
    expect(await sb.admin.listRecords(group, 'organizations', { limit: 100_000 })).toHaveLength(before + 2);

    // Ids already bound to a record are still a 409, matching or not.
    const again = await api('POST', `/api/v2/${group}/organizations`, { organizations: { name: 'Other', id: [app], opts: { matching_fields: ['name'] } } }, ext);
    expect(again.status).toBe(409);
  });
});
