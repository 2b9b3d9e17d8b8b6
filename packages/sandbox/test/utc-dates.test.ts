import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../src/index.js';
import { parseInstant } from '../src/util.js';
import { basic } from './helpers.js';

/**
 * Connec! timestamps are ISO-8601 UTC (PROTOCOL §6.7) and the Account API reads ISO-8601 values
 * as times in the platform's zone, UTC (PROTOCOL §4.5). A date-time without an offset is
 * therefore UTC, and the sandbox answers the same whatever the time zone of the machine it runs
 * on. Each test moves the host 5 h west of UTC (Node applies `process.env.TZ` as soon as it is set).
 */
describe('the sandbox reads date-times without an offset as UTC, not in the host time zone', () => {
  let sb: Sandbox;
  let auth: string;
  const originalTz = process.env.TZ;

  beforeAll(async () => {
    sb = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:9' });
    const m = sb.credentials.marketplaces[0];
    if (!m) throw new Error('marketplace');
    auth = basic(m.apiId, m.apiKey);
  });
  afterAll(() => sb.stop());
  afterEach(() => {
    if (originalTz === undefined) delete process.env.TZ;
    else process.env.TZ = originalTz;
  });

  const westOfUtc = () => {
    process.env.TZ = 'America/New_York';
    expect(new Date(2024, 0, 1).getTimezoneOffset()).toBe(300); // the host zone really changed
  };

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${sb.url}${path}`, {
      method,
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as Record<string, unknown> };
  };

  it('reads every ISO form without an offset as UTC, and keeps explicit offsets', () => {
    westOfUtc();
    expect(parseInstant('2024-01-01T10:00:00')).toBe(Date.parse('2024-01-01T10:00:00Z'));
    expect(parseInstant('2024-01-01T10:00:00.250')).toBe(Date.parse('2024-01-01T10:00:00.250Z'));
    expect(parseInstant('2024-01-01T10:00')).toBe(Date.parse('2024-01-01T10:00:00Z'));
    expect(parseInstant('2024-01-01 10:00:00')).toBe(Date.parse('2024-01-01T10:00:00Z'));
    expect(parseInstant('2024-01-01')).toBe(Date.parse('2024-01-01T00:00:00Z'));
    expect(parseInstant('2024-01-01T10:00:00+0200')).toBe(Date.parse('2024-01-01T08:00:00Z'));
    expect(parseInstant('2024-01-01T10:00-05:00')).toBe(Date.parse('2024-01-01T15:00:00Z'));
    expect(parseInstant('not a date')).toBeNaN();
  });

  it('Connec! $filter compares a transaction_date without an offset as a UTC instant', async () => {
    const group = await sb.admin.createGroup({});
    const created = await api('POST', `/api/v2/${group.id}/invoices`, { invoices: { title: 'A', transaction_date: '2024-01-01T10:00:00' } });
    expect(created.status).toBe(201);
    westOfUtc();

    const list = async (filter: string) => {
      const res = await api('GET', `/api/v2/${group.id}/invoices?$filter=${encodeURIComponent(filter)}`);
      expect(res.status).toBe(200);
      return (res.body.invoices as Array<Record<string, unknown>>).map((r) => r.title);
    };
    // 10:00 UTC is before 12:00 UTC (read in New York time it would be 15:00Z, and match)
    expect(await list("transaction_date gt '2024-01-01T12:00:00Z'")).toEqual([]);
    expect(await list("transaction_date lt '2024-01-01T12:00:00Z'")).toEqual(['A']);
    expect(await list("transaction_date eq '2024-01-01T10:00:00Z'")).toEqual(['A']);
    // the filter value without an offset is UTC too
    expect(await list("transaction_date eq '2024-01-01T11:00:00+01:00'")).toEqual(['A']);
    expect(await list("transaction_date gte '2024-01-01T10:00'")).toEqual(['A']);
  });

  it('Account API: a bill period without an offset is stored, and filtered, as UTC', async () => {
    const group = await sb.admin.createGroup({});
    westOfUtc();
    const res = await api('POST', '/api/v1/account/bills', {
      group_id: group.id,
      price_cents: 100,
      description: 'x',
      period_started_at: '2024-01-01T00:00:00',
      period_ended_at: '2024-01-31T00:00:00',
    });
    expect(res.status).toBe(200);
    const data = res.body.data as Record<string, unknown>;
    expect(data.period_started_at).toBe('2024-01-01T00:00:00.000Z');
    expect(data.period_ended_at).toBe('2024-01-31T00:00:00.000Z');

    const ids = async (query: string) => {
      const list = await api('GET', `/api/v1/account/bills?group_id=${group.id}&${query}`);
      expect(list.status).toBe(200);
      return (list.body.data as Array<Record<string, unknown>>).map((b) => b.id);
    };
    // 2023-12-31T22:00:00 is 22:00 UTC, before the period start (read in New York time it is 03:00Z, after it)
    expect(await ids(`period_started_at_strictly_after=${encodeURIComponent('2023-12-31T22:00:00')}`)).toEqual([data.id]);
    expect(await ids(`period_started_at=${encodeURIComponent('2024-01-01T00:00:00')}`)).toEqual([data.id]);
  });

  it('admin API: a group freeTrialEndAt without an offset is stored as UTC', async () => {
    westOfUtc();
    const group = await sb.admin.createGroup({ freeTrialEndAt: '2024-02-01T00:00:00' });
    expect(group.freeTrialEndAt).toBe('2024-02-01T00:00:00.000Z');
  });
});
