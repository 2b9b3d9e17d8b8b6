// Two set-up mistakes an integrator cannot see from the caller's answer alone, through the
// fetch-style handler (`mno.handler(c.req.raw)` in Hono, Next.js, …):
// - webhooks refused for their Basic credentials (after a key rotation, or a sandbox restarted
//   with new keys) are logged, at most once a minute per tenant and route, without the values;
// - a body read by middleware before `mno.handler` answers 500 `body_consumed` naming the fix
//   (as `toNodeListener` does), logged, not a 400 that tells Maestrano its request was bad.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMaestrano, defineConnector, defineEntity, type Logger, memoryAdapter, toNodeListener } from '@org/maestrano-sdk';
import { createTestIdp } from '@org/maestrano-sdk/testing';
import { beforeEach, describe, expect, it } from 'vitest';

const idp = createTestIdp();
const logs: { level: string; message: string; fields: Record<string, unknown> }[] = [];
const logger: Logger = {
  debug() {},
  info() {},
  warn: (message, fields = {}) => logs.push({ level: 'warn', message, fields }),
  error: (message, fields = {}) => logs.push({ level: 'error', message, fields }),
};
const contacts = defineEntity({
  name: 'contacts',
  connec: 'people',
  direction: 'inbound',
  toLocal: (p) => ({ name: p.last_name ?? '' }),
  local: { create: async () => ({ id: 'x' }), update: async () => undefined },
});
const storage = memoryAdapter();
const mno = createMaestrano({
  tenants: [
    idp.marketplace({ name: 'one', appHost: 'http://127.0.0.1:3000', apiId: 'app-1', apiKey: 'key-one-current' }),
    idp.marketplace({ name: 'two', appHost: 'http://127.0.0.1:3000', apiId: 'app-2', apiKey: 'key-two-current' }),
  ],
  storage,
  logger,
  provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
  onLogin: () => new Response(null, { status: 303 }),
  connector: defineConnector({ entities: [contacts] }),
});
const basic = (id: string, key: string) => `Basic ${Buffer.from(`${id}:${key}`).toString('base64')}`;
const notification = (tenant: string, authorization: string | null) =>
  new Request(`http://127.0.0.1:3000/maestrano/connec/notifications/${tenant}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
    body: JSON.stringify({ people: [{ id: 'p-1', group_id: 'cld-1', last_name: 'Doe', updated_at: '2026-01-01T00:00:00Z' }] }),
  });
const refusals = () => logs.filter((l) => l.message.includes('refused (401)'));

beforeEach(() => {
  logs.length = 0;
});

describe('a webhook refused for its credentials', () => {
  it('is logged with the tenant, the route and why, never the values; once a minute per tenant, route and reason', async () => {
    expect((await mno.handler(notification('one', basic('app-1', 'key-one-rotated')))).status).toBe(401);
    expect(refusals().map((l) => [l.level, l.fields])).toEqual([['warn', { tenant: 'one', route: 'connecNotification', refused: 'wrong api.key' }]]);
    // The same tenant, route and reason again: not logged again within the minute.
    expect((await mno.handler(notification('one', basic('app-1', 'someone-else')))).status).toBe(401);
    expect(refusals()).toHaveLength(1);
    // Another tenant, another route: each logged.
    expect((await mno.handler(notification('two', basic('nobody', 'key-two-current')))).status).toBe(401);
    const deleted = new Request('http://127.0.0.1:3000/maestrano/account/groups/cld-1/one', { method: 'DELETE' });
    expect((await mno.handler(deleted)).status).toBe(401);
    expect(refusals().map((l) => l.fields)).toEqual([
      { tenant: 'one', route: 'connecNotification', refused: 'wrong api.key' },
      { tenant: 'two', route: 'connecNotification', refused: 'unknown api.id' },
      { tenant: 'one', route: 'groupDeleted', refused: 'no credentials sent' },
    ]);
    expect(JSON.stringify(logs)).not.toMatch(/key-one|key-two|rotated|someone|nobody/);
    // Nothing was stored.
    expect(await storage.jobs.claim({ worker: 'w', limit: 10, leaseMs: 1000 })).toEqual([]);
  });
});

describe('a webhook refused for its credentials after a scanner was refused', () => {
  it("is still logged: a scanner's bare requests do not hide a stale key (once a minute per reason)", async () => {
    expect((await mno.handler(notification('two', null))).status).toBe(401);
    expect((await mno.handler(notification('two', basic('app-2', 'key-two-before-rotation')))).status).toBe(401);
    expect((await mno.handler(notification('two', null))).status).toBe(401);
    expect(refusals().map((l) => l.fields['refused'])).toEqual(['no credentials sent', 'wrong api.key']);
  });
});

describe('a body read before mno.handler', () => {
  it('answers 500 body_consumed naming the fix, logs it, and stores nothing (notification and SAML consume)', async () => {
    const read = notification('one', basic('app-1', 'key-one-current'));
    await read.text(); // e.g. a request-logging middleware
    const res = await mno.handler(read);
    const body = (await res.json()) as { error: string; message: string };
    expect([res.status, body.error]).toEqual([500, 'body_consumed']);
    expect(body.message).toMatch(/mount the Maestrano routes \(mno\.handler, or toNodeListener\(mno\.handler\) under Express\) before body parsers/);
    expect(await storage.jobs.claim({ worker: 'w', limit: 10, leaseMs: 1000 })).toEqual([]);

    const consume = new Request('http://127.0.0.1:3000/maestrano/auth/saml/consume/one', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'SAMLResponse=PHNhbWw%2B',
    });
    await consume.formData();
    const answer = await mno.handler(consume);
    expect([answer.status, ((await answer.json()) as { error: string }).error]).toEqual([500, 'body_consumed']);
    expect(logs.filter((l) => l.level === 'error' && l.message.includes('before mno.handler')).map((l) => l.fields)).toEqual([
      { tenant: 'one', route: 'connecNotification' },
      { tenant: 'one', route: 'ssoConsume' },
    ]);
  });

  it('through toNodeListener (Express): the same logged 500 once authenticated, a 401 before', async () => {
    // A request-logging middleware that reads the stream and leaves nothing in req.body.
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => void toNodeListener(mno.handler)(req, res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const post = (authorization: string | null) =>
        fetch(`${base}/maestrano/connec/notifications/one`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
          body: JSON.stringify({ people: [] }),
        });
      const refused = await post(null);
      expect(refused.status).toBe(401);
      await refused.arrayBuffer();
      const consumed = await post(basic('app-1', 'key-one-current'));
      expect([consumed.status, ((await consumed.json()) as { error: string }).error]).toEqual([500, 'body_consumed']);
      expect(logs.filter((l) => l.level === 'error' && l.message.includes('before mno.handler')).map((l) => l.fields)).toEqual([
        { tenant: 'one', route: 'connecNotification' },
      ]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
