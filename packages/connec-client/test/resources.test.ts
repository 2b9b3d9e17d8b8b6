import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  and,
  connecId,
  eq,
  gt,
  NotFoundError,
  type Page,
  PayloadValidationError,
  PermissionDeniedError,
  type Person,
  type InvalidListedRecord,
  ResponseValidationError,
  ValidationFailedError,
} from '../src/index.js';
import { APP, CHANNEL, GROUP, type Harness, personFields, startHarness } from './helpers.js';

let h: Harness;
afterEach(async () => {
  await h.server.close();
});

describe('transport headers', () => {
  beforeEach(async () => {
    h = await startHarness();
  });

  it('sends Basic auth, the JSON:API media type and a user agent; no external-ids header by default', async () => {
    h.server.seed(GROUP, 'people', [personFields(1)]);
    await h.client.group(GROUP).people.list();
    const req = h.server.requests.at(-1);
    const expected = `Basic ${Buffer.from(`${h.server.apiId}:${h.server.apiKey}`).toString('base64')}`;
    expect(req?.headers.authorization).toBe(expected);
    expect(req?.headers.accept).toBe('application/vnd.api+json');
    expect(req?.headers['content-type']).toBe('application/vnd.api+json');
    expect(req?.headers['user-agent']).toBe('@org/connec-client');
    expect(req?.headers['connec-external-ids']).toBeUndefined();
    expect(req?.path).toBe(`/api/v2/${GROUP}/people`);
  });

  it('sends per-call headers and uses the fetch given in the options', async () => {
    const seen: string[] = [];
    const client = h.makeClient({
      fetch: (input, init) => {
        seen.push(String(input));
        return fetch(input, init);
      },
    });
    await client.group(GROUP).people.list({}, { headers: { 'Connec-Country-Format': 'alpha2' } });
    expect(seen).toEqual([`${h.server.url}/api/v2/${GROUP}/people`]);
    expect(h.server.requests.at(-1)?.headers['connec-country-format']).toBe('alpha2');
    expect(h.server.requests.at(-1)?.headers.authorization).toMatch(/^Basic /);
  });

  it('asks for id arrays with CONNEC-EXTERNAL-IDS: true when externalIds is set', async () => {
    const [id] = h.server.seed(GROUP, 'people', [personFields(1)]);
    const client = h.makeClient({ externalIds: true });
    const person = await client.group(GROUP).people.retrieve(id ?? '');
    expect(h.server.requests.at(-1)?.headers['connec-external-ids']).toBe('true');
    expect(person.id).toEqual([{ id, provider: 'connec', realm: CHANNEL }]);
    const plain = await h.client.group(GROUP).people.retrieve(id ?? '');
    expect(plain.id).toBe(id);
  });
});

describe('list and paging', () => {
  beforeEach(async () => {
    h = await startHarness();
    h.server.seed(
      GROUP,
      'people',
      Array.from({ length: 7 }, (_, i) => personFields(i + 1)),
    );
  });

  it('awaits to the first page with pagination.total', async () => {
    const page: Page<Person> = await h.client.group(GROUP).people.list({ top: 3 });
    expect(page.data.map((p) => p.first_name)).toEqual(['Jane1', 'Jane2', 'Jane3']);
    expect(page.total).toBe(7);
    expect(page.hasNextPage()).toBe(true);
    expect(page.nextUrl).toBe(`${h.server.url}/api/v2/${GROUP}/people?%24skip=3&%24top=3`);
    const second = await page.getNextPage();
    expect(second.data.map((p) => p.first_name)).toEqual(['Jane4', 'Jane5', 'Jane6']);
    expect(h.server.requests).toHaveLength(2);
  });

  it('iterates every record across 3 pages by following absolute next URLs', async () => {
    const names: string[] = [];
    for await (const person of h.client.group(GROUP).people.list({ top: 3 })) names.push(person.first_name ?? '');
    expect(names).toEqual(['Jane1', 'Jane2', 'Jane3', 'Jane4', 'Jane5', 'Jane6', 'Jane7']);
    expect(h.server.requests.map((r) => r.rawUrl)).toEqual([
      `/api/v2/${GROUP}/people?%24top=3`,
      `/api/v2/${GROUP}/people?%24skip=3&%24top=3`,
      `/api/v2/${GROUP}/people?%24skip=6&%24top=3`,
    ]);
  });

  it('reuses an awaited first page when iterating afterwards', async () => {
    const list = h.client.group(GROUP).people.list({ top: 3 });
    const first = await list;
    expect(first.data).toHaveLength(3);
    let count = 0;
    for await (const _ of list) count += 1;
    expect(count).toBe(7);
    expect(h.server.requests).toHaveLength(3);
  });

  it('never sends credentials to another origin: next URLs are re-based on the configured host', async () => {
    await h.server.close();
    h = await startHarness({ publicOrigin: 'https://api-connec.maestrano.com' });
    h.server.seed(GROUP, 'people', Array.from({ length: 5 }, (_, i) => personFields(i + 1)));
    const all = await h.client.group(GROUP).people.list({ top: 2 }).toArray({ limit: 100 });
    expect(all).toHaveLength(5);
    expect(h.server.requests).toHaveLength(3);
    expect(h.server.requests[2]?.rawUrl).toBe(`/api/v2/${GROUP}/people?%24skip=4&%24top=2`);
  });

  it('keeps a host path prefix (a gateway) when following next URLs that lack it', async () => {
    await h.server.close();
    h = await startHarness({ mountPath: '/connec', publicOrigin: 'https://api-connec.maestrano.com' });
    h.server.seed(GROUP, 'people', Array.from({ length: 7 }, (_, i) => personFields(i + 1)));
    const client = h.makeClient({ host: `${h.server.url}/connec/` });
    const names: string[] = [];
    for await (const person of client.group(GROUP).people.list({ top: 3, orderBy: 'created_at ASC' })) names.push(person.first_name ?? '');
    expect(names).toEqual(['Jane1', 'Jane2', 'Jane3', 'Jane4', 'Jane5', 'Jane6', 'Jane7']);
    expect(h.server.requests.map((r) => r.path)).toEqual(Array(3).fill(`/connec/api/v2/${GROUP}/people`));
    expect(h.server.requests.map((r) => r.query.get('$skip'))).toEqual([null, '3', '6']);
    expect(h.server.requests.every((r) => r.query.get('$orderby') === 'created_at ASC')).toBe(true);
  });

  it('follows next URLs that already carry the host path prefix, still only to the configured origin', async () => {
    await h.server.close();
    h = await startHarness({ mountPath: '/gw/connec', publicOrigin: 'https://elsewhere.example.com/gw/connec' });
    h.server.seed(GROUP, 'people', Array.from({ length: 5 }, (_, i) => personFields(i + 1)));
    const client = h.makeClient({ host: `${h.server.url}/gw/connec`, basePath: '/api/v2/' });
    const first = await client.group(GROUP).people.list({ top: 2 });
    expect(first.nextUrl).toBe(`${h.server.url}/gw/connec/api/v2/${GROUP}/people?%24skip=2&%24top=2`);
    const all = await client.group(GROUP).people.list({ top: 2 }).toArray({ limit: 100 });
    expect(all).toHaveLength(5);
    expect(h.server.requests.map((r) => r.rawUrl)).toEqual([
      `/gw/connec/api/v2/${GROUP}/people?%24top=2`,
      `/gw/connec/api/v2/${GROUP}/people?%24top=2`,
      `/gw/connec/api/v2/${GROUP}/people?%24skip=2&%24top=2`,
      `/gw/connec/api/v2/${GROUP}/people?%24skip=4&%24top=2`,
    ]);
  });

  it('falls back to $skip with pagination.total when the server sends no next URL', async () => {
    await h.server.close();
    h = await startHarness({ omitNext: true });
    h.server.seed(GROUP, 'people', Array.from({ length: 7 }, (_, i) => personFields(i + 1)));
    const all = await h.client.group(GROUP).people.list({ top: 3, filter: eq('status', 'ACTIVE') }).toArray({ limit: 50 });
    expect(all.map((p) => p.first_name)).toEqual(['Jane1', 'Jane2', 'Jane3', 'Jane4', 'Jane5', 'Jane6', 'Jane7']);
    expect(h.server.requests.map((r) => r.query.get('$skip'))).toEqual([null, '3', '6']);
    expect(h.server.requests.every((r) => r.query.get('$filter') === "status eq 'ACTIVE'")).toBe(true);
  });

  it('toArray requires a limit and stops fetching once it is reached', async () => {
    const list = h.client.group(GROUP).people.list({ top: 3 }, { readAhead: false });
    await expect(list.toArray({ limit: 0 })).rejects.toBeInstanceOf(PayloadValidationError);
    // @ts-expect-error the limit is required
    await expect(list.toArray({})).rejects.toBeInstanceOf(PayloadValidationError);
    expect(h.server.requests).toHaveLength(0);
    const four = await list.toArray({ limit: 4 });
    expect(four.map((p) => p.first_name)).toEqual(['Jane1', 'Jane2', 'Jane3', 'Jane4']);
    expect(h.server.requests).toHaveLength(2);
  });

  it('encodes $filter, $orderby, $top and $skip and the server applies them', async () => {
    await h.server.close();
    h = await startHarness();
    h.server.seed(GROUP, 'people', [
      personFields(1, { status: 'ACTIVE', updated_at: '2016-01-01T00:00:00Z' }),
      personFields(2, { status: 'ARCHIVED', updated_at: '2016-06-01T00:00:00Z' }),
      personFields(3, { status: 'ACTIVE', updated_at: '2016-09-01T10:00:00Z', last_name: "O'Hara" }),
      personFields(4, { status: 'ACTIVE', updated_at: '2016-12-01T00:00:00Z', last_name: "O'Hara" }),
    ]);
    const filter = and(eq('status', 'ACTIVE'), gt('updated_at', new Date('2016-02-01T00:00:00Z')), eq('last_name', "O'Hara"));
    const page = await h.client.group(GROUP).people.list({ filter, orderBy: 'updated_at DESC', top: 10, skip: 0 });
    const req = h.server.requests.at(-1);
    expect(req?.query.get('$filter')).toBe(
      "status eq 'ACTIVE' and updated_at gt '2016-02-01T00:00:00Z' and last_name eq 'O''Hara'",
    );
    expect(req?.rawUrl).toContain('%24filter=status%20eq%20');
    expect(req?.query.get('$orderby')).toBe('updated_at DESC');
    expect(req?.query.get('$top')).toBe('10');
    expect(req?.query.get('$skip')).toBe('0');
    expect(page.data.map((p) => p.first_name)).toEqual(['Jane4', 'Jane3']);
    expect(page.total).toBe(2);
  });

  it('adds updated_at gt to the filter for updatedSince', async () => {
    await h.client.group(GROUP).people.list({ updatedSince: '2026-01-01T00:00:03.500Z', filter: "status eq 'ACTIVE'" });
    expect(h.server.requests.at(-1)?.query.get('$filter')).toBe(
      "status eq 'ACTIVE' and updated_at gt '2026-01-01T00:00:03.500Z'",
    );
    await expect(h.client.group(GROUP).people.list({ updatedSince: 'yesterday' })).rejects.toBeInstanceOf(
      PayloadValidationError,
    );
  });

  it('reads an updatedSince string without an offset as UTC, and refuses strings that are not ISO date-times', async () => {
    await h.client.group(GROUP).people.list({ updatedSince: '2016-01-01T00:00:00' });
    const sent = h.server.requests.at(-1)?.query.get('$filter') ?? '';
    expect(sent).toBe("updated_at gt '2016-01-01T00:00:00Z'");
    expect(Date.parse(/'(.*)'/.exec(sent)?.[1] ?? '')).toBe(Date.UTC(2016, 0, 1));
    await h.client.group(GROUP).people.list({ updatedSince: '2016-01-01T10:00:00+10:00' });
    expect(h.server.requests.at(-1)?.query.get('$filter')).toBe("updated_at gt '2016-01-01T00:00:00Z'");
    const count = h.server.requests.length;
    for (const updatedSince of ['banana 12', '12/31/2016', '2016-01-01', new Date(Number.NaN), 5 as unknown as string]) {
      const error = await h.client
        .group(GROUP)
        .people.list({ updatedSince })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error, String(updatedSince)).toBeInstanceOf(PayloadValidationError);
      expect((error as PayloadValidationError).issues.map((i) => i.path)).toEqual(['updatedSince']);
    }
    expect(h.server.requests).toHaveLength(count);
  });

  it('fails with a ResponseValidationError naming every bad path, and keeps unknown fields otherwise', async () => {
    await h.server.close();
    h = await startHarness();
    h.server.seed(GROUP, 'people', [
      personFields(1, { custom_score: 7 }),
      personFields(2, { email: { address: 42 } }),
      personFields(3, { is_customer: 'yes' }),
    ]);
    const error = await h.client
      .group(GROUP)
      .people.list()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(ResponseValidationError);
    const issues = (error as ResponseValidationError).issues.map((i) => i.path);
    expect(issues).toEqual(['people/1/email/address', 'people/2/is_customer']);
    expect((error as ResponseValidationError).message).toContain('people/1/email/address');

    const ok = await h.client.group(GROUP).people.list({ top: 1 });
    expect(ok.data[0]?.custom_score).toBe(7);
  });

  it('with onInvalidRecord: hands each invalid record over, keeps the valid ones, and pages past both', async () => {
    await h.server.close();
    h = await startHarness();
    h.server.seed(GROUP, 'people', [
      personFields(1),
      personFields(2, { email: { address: 42 } }),
      personFields(3),
      personFields(4, { is_customer: 'yes' }),
      personFields(5),
    ]);
    const invalid: InvalidListedRecord[] = [];
    const onInvalidRecord = (bad: InvalidListedRecord) => invalid.push(bad);
    const first = await h.client.group(GROUP).people.list({ top: 2 }, { onInvalidRecord });
    expect(first.data.map((p) => p.last_name)).toEqual([personFields(1).last_name]);
    expect(invalid.map((b) => [b.index, b.issues.map((i) => i.path)])).toEqual([[1, ['people/1/email/address']]]);
    expect(invalid[0]?.message).toMatch(/^Connec! list people: people\/1\/email\/address: /);
    expect(invalid[0]?.record).toMatchObject({ email: { address: 42 } });

    invalid.length = 0;
    const names: unknown[] = [];
    for await (const person of h.client.group(GROUP).people.list({ top: 2 }, { onInvalidRecord })) names.push(person.last_name);
    expect(names).toEqual([1, 3, 5].map((n) => personFields(n).last_name));
    // Indexes are per page: the second page's second record, the first of the third... none.
    expect(invalid.map((b) => [b.index, b.issues[0]?.path])).toEqual([
      [1, 'people/1/email/address'],
      [1, 'people/1/is_customer'],
    ]);
  });
});

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i += 1) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe('read-ahead', () => {
  beforeEach(async () => {
    h = await startHarness();
    h.server.seed(GROUP, 'people', Array.from({ length: 6 }, (_, i) => personFields(i + 1)));
  });

  it('requests the next page while the current one is consumed (by default)', async () => {
    const names: string[] = [];
    for await (const person of h.client.group(GROUP).people.list({ top: 3 })) {
      if (names.length === 0) await until(() => h.server.requests.length === 2, 'the read-ahead request');
      names.push(person.first_name ?? '');
    }
    expect(names).toEqual(['Jane1', 'Jane2', 'Jane3', 'Jane4', 'Jane5', 'Jane6']);
    expect(h.server.requests.map((r) => r.query.get('$skip'))).toEqual([null, '3']);
  });

  it('iterates with a caller signal without piling listeners on it', async () => {
    await h.server.close();
    h = await startHarness();
    h.server.seed(GROUP, 'people', Array.from({ length: 40 }, (_, i) => personFields(i + 1)));
    const controller = new AbortController();
    let added = 0;
    let removed = 0;
    const add = controller.signal.addEventListener.bind(controller.signal);
    const remove = controller.signal.removeEventListener.bind(controller.signal);
    controller.signal.addEventListener = ((...args: Parameters<typeof add>) => {
      added += 1;
      add(...args);
    }) as typeof add;
    controller.signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
      removed += 1;
      remove(...args);
    }) as typeof remove;
    let count = 0;
    for await (const _ of h.client.group(GROUP).people.list({ top: 2 }, { signal: controller.signal })) count += 1;
    expect(count).toBe(40);
    expect(h.server.requests).toHaveLength(20);
    expect(added).toBeGreaterThanOrEqual(20);
    expect(added - removed).toBe(0);
  });

  it('with readAhead: false, sends nothing until the consumer asks for the next page', async () => {
    const seenAtPageEnd: number[] = [];
    let i = 0;
    for await (const _ of h.client.group(GROUP).people.list({ top: 3 }, { readAhead: false })) {
      i += 1;
      if (i % 3 === 0) seenAtPageEnd.push(h.server.requests.length);
    }
    expect(seenAtPageEnd).toEqual([1, 2]);
  });

  it('cancels the read-ahead request when the iteration stops early', async () => {
    h.server.fault({ path: `/api/v2/${GROUP}/people`, after: 1, action: { kind: 'hang' } });
    let first: string | undefined;
    for await (const person of h.client.group(GROUP).people.list({ top: 3 })) {
      await until(() => h.server.requests.length === 2, 'the read-ahead request');
      first = person.first_name ?? undefined;
      break;
    }
    expect(first).toBe('Jane1');
    await until(() => h.server.abandonedHangs === 1, 'the read-ahead request to be cancelled');
    expect(h.server.requests).toHaveLength(2);
  });

  it('surfaces a failure of the next page only after every record of the current page', async () => {
    h.server.fault({ path: `/api/v2/${GROUP}/people`, after: 1, action: { kind: 'reply', status: 403 } });
    const names: string[] = [];
    const error = await (async () => {
      for await (const person of h.client.group(GROUP).people.list({ top: 3 })) names.push(person.first_name ?? '');
    })().catch((e: unknown) => e);
    expect(names).toEqual(['Jane1', 'Jane2', 'Jane3']);
    expect(error).toBeInstanceOf(PermissionDeniedError);
  });
});

describe('retrieve, create, update, company, collection()', () => {
  beforeEach(async () => {
    h = await startHarness();
  });

  it('creates a record (201) and it is stored, then retrieves it by id or by id array', async () => {
    const people = h.makeClient({ externalIds: true }).group(GROUP).people;
    const created = await people.create({
      ...personFields(1),
      id: [{ id: 'per-55', provider: APP.provider, realm: APP.realm }],
      organization_id: [{ id: 'org-uuid-1', provider: 'connec', realm: CHANNEL }],
    });
    const cid = connecId(created.id);
    expect(cid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.id).toEqual([
      { id: cid, provider: 'connec', realm: CHANNEL },
      { id: 'per-55', provider: APP.provider, realm: APP.realm },
    ]);
    expect(created.group_id).toBe(GROUP);
    expect(h.server.stored(GROUP, 'people')).toHaveLength(1);
    const post = h.server.requests.at(-1);
    expect(post?.method).toBe('POST');
    expect(post?.body).toMatchObject({ people: { first_name: 'Jane1' } });

    const again = await people.retrieve(created.id);
    expect(again.first_name).toBe('Jane1');
    expect(h.server.requests.at(-1)?.path).toBe(`/api/v2/${GROUP}/people/${cid}`);
  });

  it('rejects an invalid record before sending anything', async () => {
    const error = await h.client
      .group(GROUP)
      .people.create({ first_name: 'X', email: { address: 5 as unknown as string } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PayloadValidationError);
    expect((error as PayloadValidationError).issues.map((i) => i.path)).toEqual(['email/address']);
    expect(h.server.requests).toHaveLength(0);
  });

  it('surfaces server-side validation (400) with the errors list', async () => {
    const error = await h.client
      .group(GROUP)
      .people.create(personFields(1, { email: { address: 'not-an-email' } }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationFailedError);
    expect((error as ValidationFailedError).status).toBe(400);
    expect((error as ValidationFailedError).errors).toEqual([
      { field: undefined, message: 'email is invalid', code: 'validation' },
    ]);
    expect(h.server.stored(GROUP, 'people')).toHaveLength(0);
  });

  it('retrieve(id, { expand }) sends $expand on the single GET, encoded, and keeps the path', async () => {
    const [id = ''] = h.server.seed(GROUP, 'people', [personFields(1)]);
    const people = h.client.group(GROUP).people;
    const one = await people.retrieve(id, { expand: 'matching_records' });
    expect(one.first_name).toBe('Jane1');
    const req = h.server.requests.at(-1);
    expect(req?.path).toBe(`/api/v2/${GROUP}/people/${id}`);
    expect(req?.rawUrl).toBe(`/api/v2/${GROUP}/people/${id}?%24expand=matching_records`);
    expect(req?.query.get('$expand')).toBe('matching_records');

    await people.retrieve(id, { expand: ['matching_records', 'a&b=c'], headers: { 'x-trace': '1' } });
    const many = h.server.requests.at(-1);
    expect(many?.path).toBe(`/api/v2/${GROUP}/people/${id}`);
    expect([...(many?.query.entries() ?? [])]).toEqual([['$expand', 'matching_records,a&b=c']]);
    expect(many?.headers['x-trace']).toBe('1');

    const count = h.server.requests.length;
    for (const expand of ['', '  ', [], ['ok', ''], 7 as unknown as string]) {
      const error = await people.retrieve(id, { expand }).catch((e: unknown) => e);
      expect(error, JSON.stringify(expand)).toBeInstanceOf(PayloadValidationError);
      expect((error as PayloadValidationError).issues.map((i) => i.path)).toEqual(['expand']);
    }
    expect(h.server.requests).toHaveLength(count);
  });

  it('accepts every *_id reference as an id array under external ids (employees.employee_id)', async () => {
    const employees = h.makeClient({ externalIds: true }).group(GROUP).employees;
    const created = await employees.create({ first_name: 'E', employee_id: 'EMP-7', pay_schedule_id: 'ps-1' });
    expect(created.employee_id).toEqual([{ id: 'EMP-7', provider: 'connec', realm: CHANNEL }]);
    expect(created.pay_schedule_id).toEqual([{ id: 'ps-1', provider: 'connec', realm: CHANNEL }]);
    expect(h.server.stored(GROUP, 'employees')).toHaveLength(1);
    // Without external ids the same field is a plain string.
    const plain = await h.client.group(GROUP).employees.retrieve(connecId(created.id) ?? '');
    expect(plain.employee_id).toBe('EMP-7');
  });

  it('updates partially with PUT', async () => {
    const [id = ''] = h.server.seed(GROUP, 'people', [personFields(1)]);
    const updated = await h.client.group(GROUP).people.update(id, { job_title: 'CTO' });
    expect(updated.job_title).toBe('CTO');
    expect(updated.first_name).toBe('Jane1');
    expect(h.server.requests.at(-1)).toMatchObject({ method: 'PUT', body: { people: { job_title: 'CTO' } } });
    expect(h.server.stored(GROUP, 'people')[0]?.job_title).toBe('CTO');
  });

  it('reads and updates the singular company (object envelope, no id in the path)', async () => {
    h.server.seedCompany(GROUP, {
      name: 'Acme',
      timezone: 'Australia/Sydney',
      email: { address: 'hi@acme.io' },
      address: { billing: { line1: '1 George St' }, billing2: {}, shipping: {}, shipping2: {} },
    });
    const company = await h.client.group(GROUP).company.retrieve();
    expect(company.name).toBe('Acme');
    expect(company.address?.billing2).toEqual({});
    const updated = await h.client.group(GROUP).company.update({ currency: 'AUD' });
    expect(updated.currency).toBe('AUD');
    expect(h.server.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `GET /api/v2/${GROUP}/company`,
      `PUT /api/v2/${GROUP}/company`,
    ]);
  });

  it('reaches collections without a typed schema through collection(name)', async () => {
    h.server.seed(GROUP, 'journals', [{ title: 'J1', status: 'ACTIVE' }]);
    const page = await h.client.group(GROUP).collection('journals').list();
    expect(page.data[0]?.title).toBe('J1');
    const unknown = await h.client
      .group(GROUP)
      .collection('bogus_things')
      .list()
      .catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(ValidationFailedError);
    expect((unknown as ValidationFailedError).errors[0]?.message).toBe('Unknown resource bogus_things');
    expect(() => h.client.group(GROUP).collection('../etc')).toThrow(PayloadValidationError);
    // The singular company is no collection (a list or an id would be a 404 or a wrong path).
    const dynamic: string = 'Company';
    expect(() => h.client.group(GROUP).collection(dynamic)).toThrow(/use `group.company.retrieve\(\)`/);
    // @ts-expect-error typed out too
    expect(() => h.client.group(GROUP).collection('company')).toThrow(PayloadValidationError);
    expect(() => h.client.group('cld/../x')).toThrow(PayloadValidationError);
    for (const id of ['..', '%2e%2E', '.', '']) {
      await expect(h.client.group(GROUP).people.retrieve(id)).rejects.toBeInstanceOf(PayloadValidationError);
    }
    const slashy = await h.client
      .group(GROUP)
      .people.retrieve('a/../../x')
      .catch((e: unknown) => e);
    expect(slashy).toBeInstanceOf(NotFoundError);
    expect(h.server.requests.at(-1)?.rawUrl).toBe(`/api/v2/${GROUP}/people/a%2F..%2F..%2Fx`);
  });
});
