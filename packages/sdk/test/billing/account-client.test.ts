import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AccountClient, createAccountClient } from '../../src/account/index.js';
import {
  AuthenticationError,
  ConnectionError,
  NotFoundError,
  PayloadValidationError,
  RateLimitError,
  ResponseValidationError,
  ServerError,
  ValidationFailedError,
} from '../../src/errors/index.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';

let api: AccountApiServer;
let client: AccountClient;

function tenantFor(server: AccountApiServer, key = server.apiKey) {
  return { api: { id: server.apiId, key, host: server.url, base: '/api/v1/' } };
}

beforeAll(async () => {
  api = await startAccountApiServer();
});
afterAll(async () => {
  await api.close();
});
beforeEach(() => {
  api.groups.clear();
  api.users.clear();
  api.bills.clear();
  api.recurringBills.clear();
  api.requests.length = 0;
  api.faults.length = 0;
  api.addGroup('cld-1', { free_trial_end_at: '2030-01-01T00:00:00Z', has_credit_card: true });
  api.addGroup('cld-2');
  api.addUser('usr-1', ['cld-1']);
  api.addUser('usr-2', ['cld-2']);
  client = createAccountClient(tenantFor(api), { retry: { backoffLimitMs: 5 } });
});

describe('groups and users', () => {
  it('lists and retrieves groups with typed fields', async () => {
    const groups = await client.groups.list();
    expect(groups.map((g) => g.id).sort()).toEqual(['cld-1', 'cld-2']);
    const group = await client.groups.retrieve('cld-1');
    expect(group.freeTrialEndAt).toEqual(new Date('2030-01-01T00:00:00Z'));
    expect(group.hasCreditCard).toBe(true);
    expect(group.currency).toBe('USD');
    const req = api.requests.at(-1)!;
    expect(req.method).toBe('GET');
    expect(req.path).toBe('/api/v1/account/groups/cld-1');
    expect(req.headers.authorization).toBe(`Basic ${Buffer.from('app-1:secret-key-1').toString('base64')}`);
  });

  it('reads a date written without a time zone as UTC, whatever the server time zone', async () => {
    api.addGroup('cld-3', { free_trial_end_at: '2030-01-01T00:00:00' });
    const tz = process.env.TZ;
    process.env.TZ = 'America/Los_Angeles';
    try {
      expect((await client.groups.retrieve('cld-3')).freeTrialEndAt?.toISOString()).toBe('2030-01-01T00:00:00.000Z');
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });

  it('lists users of one group and never exposes the sso_session token', async () => {
    const users = await client.users.list({ groupId: 'cld-2' });
    expect(users.map((u) => u.id)).toEqual(['usr-2']);
    expect(api.requests.at(-1)!.query).toEqual({ group_id: 'cld-2' });
    const user = await client.users.retrieve('usr-1');
    expect(user).toMatchObject({ id: 'usr-1', name: 'John', surname: 'Doe', companyName: 'DoeCorp' });
    expect(JSON.stringify(user)).not.toContain('secret-session-token');
  });

  it('maps the sandbox "unknown id" answer (200, success=false) to NotFoundError', async () => {
    const error = await client.groups.retrieve('cld-404').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ service: 'account', status: 200, code: 'api_not_found' });
    await expect(client.users.retrieve('usr-404')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('filters with equality and comparison suffixes; an unknown filter answers an empty list', async () => {
    api.groups.get('cld-2')!.created_at = '2020-01-01T00:00:00.000Z';
    const recent = await client.groups.list({ where: { created_at_after: new Date('2021-01-01T00:00:00Z') } });
    expect(recent.map((g) => g.id)).toEqual(['cld-1']);
    expect(api.requests.at(-1)!.query).toEqual({ created_at_after: '2021-01-01T00:00:00.000Z' });
    expect((await client.groups.list({ where: { currency: 'USD' } })).length).toBe(2);
    expect(await client.groups.list({ where: { no_such_attribute: 'x' } })).toEqual([]);
  });

  it('refuses where.group_id (use groupId) without sending anything', async () => {
    expect(() => client.bills.list({ where: { group_id: 'cld-1' } })).toThrow(PayloadValidationError);
    expect(api.requests).toHaveLength(0);
  });
});

describe('bills', () => {
  it('creates, lists, retrieves and cancels a bill (JSON body, snake_case fields)', async () => {
    const bill = await client.bills.create({
      groupId: 'cld-1',
      priceCents: 1250,
      description: 'SMS credits',
      currency: 'USD',
      units: 2.5,
      thirdParty: true,
      periodStartedAt: new Date('2030-02-01T00:00:00Z'),
      periodEndedAt: new Date('2030-03-01T00:00:00Z'),
    });
    expect(bill).toMatchObject({
      groupId: 'cld-1',
      priceCents: 1250,
      currency: 'USD',
      units: 2.5,
      thirdParty: true,
      status: 'submitted',
      periodStartedAt: new Date('2030-02-01T00:00:00Z'),
    });
    const post = api.requests.at(-1)!;
    expect(post.headers['content-type']).toContain('application/json');
    expect(post.body).toEqual({
      group_id: 'cld-1',
      price_cents: 1250,
      description: 'SMS credits',
      currency: 'USD',
      units: 2.5,
      third_party: true,
      period_started_at: '2030-02-01T00:00:00.000Z',
      period_ended_at: '2030-03-01T00:00:00.000Z',
    });
    expect(api.bills.get(bill.id)).toMatchObject({ price_cents: 1250, status: 'submitted' });

    await client.bills.create({ groupId: 'cld-2', priceCents: 100, description: 'Other group' });
    expect((await client.bills.list({ groupId: 'cld-1' })).map((b) => b.id)).toEqual([bill.id]);
    expect((await client.bills.list()).length).toBe(2);
    expect((await client.bills.retrieve(bill.id)).description).toBe('SMS credits');

    const cancelled = await client.bills.cancel(bill.id);
    expect(cancelled.status).toBe('cancelled');
    expect(api.bills.get(bill.id)!.status).toBe('cancelled');
    expect(api.requests.at(-1)!.method).toBe('DELETE');
  });

  it('surfaces the whole errors map of a 400 as ValidationFailedError', async () => {
    api.bills.set('bill-9', {
      id: 'bill-9',
      object: 'account_bill',
      group_id: 'cld-1',
      price_cents: 5,
      description: 'x',
      status: 'invoiced',
    });
    const error = await client.bills.cancel('bill-9').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationFailedError);
    expect((error as ValidationFailedError).status).toBe(400);
    expect((error as ValidationFailedError).errors).toEqual([
      { field: 'status', message: 'has already been set to invoiced and cannot be changed' },
    ]);
    expect(api.bills.get('bill-9')!.status).toBe('invoiced');
  });

  it('maps a bad group_id on create to ValidationFailedError on group_id', async () => {
    const error = await client.bills
      .create({ groupId: 'cld-unknown', priceCents: 100, description: 'x' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationFailedError);
    expect((error as ValidationFailedError).errors).toEqual([
      { field: 'group_id', message: 'does not exist or cannot be charged by your service' },
    ]);
    expect(api.bills.size).toBe(0);
  });

  it('maps several server-side field errors at once', async () => {
    api.faults.push({
      status: 400,
      times: 1,
      method: 'POST',
      errors: { price_cents: ['must be greater than 0', 'is not a number'], description: ["can't be blank"] },
    });
    const error = await client.bills.create({ groupId: 'cld-1', priceCents: 1, description: 'x' }).catch((e) => e);
    expect(error).toBeInstanceOf(ValidationFailedError);
    expect((error as ValidationFailedError).errors).toEqual([
      { field: 'price_cents', message: 'must be greater than 0' },
      { field: 'price_cents', message: 'is not a number' },
      { field: 'description', message: "can't be blank" },
    ]);
    expect((error as ValidationFailedError).message).toContain("description can't be blank");
    expect(api.bills.size).toBe(0);
  });

  it('maps DELETE of an unknown id (400 {"id":["does not exist"]}) to NotFoundError', async () => {
    const error = await client.bills.cancel('bill-404').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).status).toBe(400);
  });

  it('validates input before sending: bad input is a PayloadValidationError and nothing is sent', async () => {
    const bad = [
      { groupId: 'cld-1', priceCents: 0, description: 'x' },
      { groupId: 'cld-1', priceCents: 1.5, description: 'x' },
      { groupId: 'cld-1', priceCents: 100, description: '  ' },
      { groupId: 'cld-1', priceCents: 100, description: 'x', currency: 'usd' },
      { groupId: 'cld-1', priceCents: 100, description: 'x', units: 0 },
      { groupId: '', priceCents: 100, description: 'x' },
    ];
    for (const input of bad) {
      expect(() => client.bills.create(input)).toThrow(PayloadValidationError);
    }
    expect(() => client.bills.create({ groupId: 'cld-1', priceCents: 1, description: 'x', extra: 1 } as never)).toThrow(
      /Invalid bill/,
    );
    expect(() => client.bills.retrieve('')).toThrow(PayloadValidationError);
    expect(api.requests).toHaveLength(0);
  });
});

describe('currency (ISO 4217)', () => {
  it('create - a code that is not ISO 4217 is a PayloadValidationError naming it, and nothing is sent', async () => {
    expect(() => client.bills.create({ groupId: 'cld-1', priceCents: 100, description: 'x', currency: 'XYZ' })).toThrow(
      'Invalid bill: currency: "XYZ" is not an ISO 4217 currency code',
    );
    expect(() =>
      client.recurringBills.create({ groupId: 'cld-1', priceCents: 100, description: 'x', currency: 'ABC' }),
    ).toThrow('Invalid recurring bill: currency: "ABC" is not an ISO 4217 currency code');
    expect(() => client.bills.create({ groupId: 'cld-1', priceCents: 100, description: 'x', currency: 'QQQ' })).toThrow(
      PayloadValidationError,
    );
    expect(api.requests).toHaveLength(0);
    const bill = await client.bills.create({ groupId: 'cld-1', priceCents: 100, description: 'x', currency: 'JPY' });
    expect(bill.currency).toBe('JPY');
  });
});

describe('recurring bills', () => {
  it('creates, lists, retrieves and cancels a recurring bill', async () => {
    const start = new Date(Date.now() + 86_400_000);
    const rbill = await client.recurringBills.create({
      groupId: 'cld-1',
      priceCents: 2900,
      description: 'Pro plan',
      currency: 'USD',
      period: 'Month',
      frequency: 1,
      cycles: null,
      startDate: start,
      initialCents: 500,
    });
    expect(rbill).toMatchObject({
      groupId: 'cld-1',
      priceCents: 2900,
      period: 'month',
      frequency: 1,
      cycles: null,
      initialCents: 500,
      startDate: start,
      status: 'submitted',
    });
    expect(api.requests.at(-1)!.body).toEqual({
      group_id: 'cld-1',
      price_cents: 2900,
      description: 'Pro plan',
      currency: 'USD',
      period: 'Month',
      frequency: 1,
      cycles: null,
      start_date: start.toISOString(),
      initial_cents: 500,
    });
    expect((await client.recurringBills.list({ groupId: 'cld-1' })).map((r) => r.id)).toEqual([rbill.id]);
    expect(await client.recurringBills.list({ groupId: 'cld-2' })).toEqual([]);
    expect((await client.recurringBills.retrieve(rbill.id)).description).toBe('Pro plan');
    expect((await client.recurringBills.cancel(rbill.id)).status).toBe('cancelled');
    expect(api.recurringBills.get(rbill.id)!.status).toBe('cancelled');
    await expect(client.recurringBills.cancel(rbill.id)).rejects.toBeInstanceOf(ValidationFailedError);
  });

  it('surfaces the platform validation of start dates and periods', async () => {
    const error = await client.recurringBills
      .create({ groupId: 'cld-1', priceCents: 100, description: 'x', startDate: new Date(Date.now() - 7_200_000) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationFailedError);
    expect((error as ValidationFailedError).errors[0]!.field).toBe('start_date');
    // frequency × period over a year is refused before sending (the platform always refuses it).
    expect(() =>
      client.recurringBills.create({ groupId: 'cld-1', priceCents: 100, description: 'x', period: 'Month', frequency: 13 }),
    ).toThrow(PayloadValidationError);
    expect(() =>
      client.recurringBills.create({ groupId: 'cld-1', priceCents: 100, description: 'x', period: 'SemiMonth', frequency: 2 }),
    ).toThrow(PayloadValidationError);
    expect(api.recurringBills.size).toBe(0);
  });
});

describe('transport', () => {
  it('maps 401 to AuthenticationError and never puts the key in the message', async () => {
    const wrong = createAccountClient(tenantFor(api, 'wrong-key'));
    const error = await wrong.groups.list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as AuthenticationError).status).toBe(401);
    expect((error as AuthenticationError).message).toContain('authentication Invalid API token');
    expect(`${(error as Error).message} ${(error as AuthenticationError).url}`).not.toContain('wrong-key');
  });

  it('retries GET on 5xx and 429 (honouring Retry-After) and then succeeds', async () => {
    api.faults.push({ status: 503, times: 1, method: 'GET' }, { status: 429, times: 1, method: 'GET', retryAfter: '0' });
    const groups = await client.groups.list();
    expect(groups).toHaveLength(2);
    expect(api.requests.filter((r) => r.method === 'GET')).toHaveLength(3);
  });

  it('gives up after the retry limit with a ServerError carrying the system error', async () => {
    api.faults.push({ status: 500, times: 5, method: 'GET' });
    const error = await client.groups.list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServerError);
    expect((error as ServerError).status).toBe(500);
    expect((error as ServerError).message).toContain('system A system error occured');
    expect(api.requests).toHaveLength(3);
  });

  it('maps 429 without retries left to RateLimitError with retryAfterMs', async () => {
    api.faults.push({ status: 429, times: 1, method: 'GET', retryAfter: '7' });
    const error = await client.groups.list({}, { retry: { limit: 0 } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitError);
    expect((error as RateLimitError).retryAfterMs).toBe(7000);
  });

  it('a 503 without retries left is a ServerError carrying retryAfterMs too', async () => {
    api.faults.push({ status: 503, times: 1, method: 'GET', retryAfter: '9' });
    const error = await client.groups.list({}, { retry: { limit: 0 } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServerError);
    expect((error as ServerError).retryAfterMs).toBe(9000);
  });

  it('never retries POST or DELETE', async () => {
    api.faults.push({ status: 503, times: 1, method: 'POST' });
    await expect(client.bills.create({ groupId: 'cld-1', priceCents: 100, description: 'x' })).rejects.toBeInstanceOf(
      ServerError,
    );
    expect(api.requests).toHaveLength(1);
    expect(api.bills.size).toBe(0);
    api.faults.push({ status: 502, times: 1, method: 'DELETE' });
    await expect(client.bills.cancel('bill-1')).rejects.toBeInstanceOf(ServerError);
    expect(api.requests).toHaveLength(2);
  });

  it('maps a non-JSON error page to the status error and a non-JSON 200 to ResponseValidationError', async () => {
    api.faults.push({ status: 502, times: 1, rawBody: '<html>Bad gateway</html>' });
    const gateway = await client.groups.list({}, { retry: { limit: 0 } }).catch((e: unknown) => e);
    expect(gateway).toBeInstanceOf(ServerError);
    expect((gateway as ServerError).body).toBe('<html>Bad gateway</html>');
    api.faults.push({ status: 200, times: 1, rawBody: 'OK' });
    await expect(client.groups.list()).rejects.toBeInstanceOf(ResponseValidationError);
  });

  it('rejects a success envelope whose data has the wrong shape', async () => {
    api.groups.set('cld-bad', { id: 'cld-bad', object: 'account_user' });
    const error = await client.groups.retrieve('cld-bad').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResponseValidationError);
    expect((error as ResponseValidationError).issues[0]!.path).toBe('object');
  });

  it('times out waiting for a response (ConnectionError timeout), without retrying past the limit', async () => {
    api.faults.push({ status: 500, times: 2, delayMs: 400, method: 'GET' });
    const error = await client.groups
      .list({}, { timeouts: { connectMs: 100 }, retry: { limit: 1 } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error).toMatchObject({ failure: 'timeout', code: 'connection_timeout', service: 'account' });
    expect(api.requests).toHaveLength(2);
  });

  it('bounds the whole attempt: headers in time but a stalled body is a timeout too', async () => {
    const stalled = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"success":true,"errors":{},"data":[');
      // never ends the body
    });
    await new Promise<void>((r) => stalled.listen(0, '127.0.0.1', r));
    const { port } = stalled.address() as AddressInfo;
    try {
      const slow = createAccountClient(
        { api: { id: 'a', key: 'b', host: `http://127.0.0.1:${port}`, base: '/api/v1/' } },
        { timeouts: { connectMs: 5_000, totalMs: 150 }, retry: { limit: 0 } },
      );
      const error = await slow.groups.list().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectionError);
      expect(error).toMatchObject({ failure: 'timeout' });
      expect((error as Error).message).toContain('incomplete response after 150 ms');
    } finally {
      stalled.closeAllConnections();
      await new Promise<void>((r) => stalled.close(() => r()));
    }
  });

  it('reports an aborted call as ConnectionError aborted', async () => {
    api.faults.push({ status: 500, times: 1, delayMs: 300, method: 'GET' });
    const controller = new AbortController();
    const pending = client.groups.list({}, { signal: controller.signal }).catch((e: unknown) => e);
    setTimeout(() => controller.abort(), 50);
    expect(await pending).toMatchObject({ failure: 'aborted', code: 'connection_aborted' });
  });

  it('reports a refused connection as ConnectionError network after retrying GET', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((r) => server.close(() => r()));
    const dead = createAccountClient(
      { api: { id: 'a', key: 'b', host: `http://127.0.0.1:${port}`, base: '/api/v1/' } },
      { retry: { backoffLimitMs: 5 } },
    );
    const error = await dead.groups.list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error).toMatchObject({ failure: 'network', code: 'connection_error' });
  });
});

afterEach(() => {
  api.faults.length = 0;
});
