/**
 * A first login whose group could not be recorded (the storage failed after the company was
 * created and its follow-up jobs queued): the billing subscription waits for the group and
 * runs as soon as a later login completes it, instead of spending its attempts and dying.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Sandbox, startSandbox } from '@org/maestrano-sandbox';
import { createMaestrano, JobTypes, memoryAdapter, tenantsFromDevPlatform, toNodeListener } from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';

const TENANT = 'ready-e2e';
const silent = { debug() {}, info() {}, warn() {}, error() {} };
let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

describe('jobs waiting for a group to be provisioned', () => {
  it('billing.subscribe waits for the group and runs when a later login completes it', async () => {
    let handler: ((r: Request) => Promise<Response>) | undefined;
    const server: Server = createServer((req, res) => void toNodeListener((r) => (handler as (r: Request) => Promise<Response>)(r))(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const sandbox: Sandbox = await startSandbox({ port: 0, appUrl, marketplaces: [TENANT] });
    cleanup = async () => {
      await sandbox.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    };
    const tenants = await tenantsFromDevPlatform({ host: sandbox.url, key: sandbox.credentials.environment.apiKey, secret: sandbox.credentials.environment.apiSecret, refreshMs: 0, logger: silent });
    const storage = memoryAdapter();
    // One storage failure while recording the group, after the company was created.
    const complete = storage.groups.complete.bind(storage.groups);
    let failOnce = true;
    storage.groups.complete = async (...args: Parameters<typeof complete>) => {
      if (failOnce) {
        failOnce = false;
        throw new Error('connection reset');
      }
      return complete(...args);
    };
    let n = 0;
    const mno = createMaestrano({
      tenants,
      storage,
      provisioning: { createCompany: () => ({ id: `company-${++n}` }), createUser: () => ({ id: `user-${++n}` }) },
      onLogin: ({ company }) => Response.json({ companyId: company.id }),
      sso: { allowIdpInitiated: true },
      billing: { onCompanyCreated: () => ({ priceCents: 1000, description: 'Pro plan', currency: 'USD' }), subscription: { retryDelayMs: 10 } },
      logger: silent,
    });
    handler = mno.handler;
    const group = await sandbox.admin.createGroup({ marketplace: TENANT, name: 'Ready Co' });
    const user = await sandbox.admin.createUser({ memberships: [{ groupId: group.id, role: 'Admin' }] });
    const login = async () => {
      const sso = await sandbox.admin.ssoIdpInitiated({ userId: user.id, groupId: group.id });
      return (await fetch(sso.acsUrl, { method: 'POST', body: new URLSearchParams({ SAMLResponse: sso.samlResponse }), redirect: 'manual' })).status;
    };
    const drainFor = async (ms: number) => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        await mno.worker.drain({ pollIntervalMs: 5 });
        await new Promise((r) => setTimeout(r, 20));
      }
    };

    expect(await login()).toBe(500);
    // retryDelayMs is 10 ms: the old deferral spent all of its attempts within this window.
    await drainFor(800);
    const [waiting] = await storage.jobs.listDead({ type: JobTypes.billingSubscribe });
    expect(waiting).toBeUndefined();
    expect(await storage.jobs.counts({ type: JobTypes.billingSubscribe })).toMatchObject({ pending: 1, dead: 0 });
    expect(await sandbox.admin.listRecurringBills(group.id)).toHaveLength(0);

    expect(await login()).toBe(200);
    await mno.worker.drain({ pollIntervalMs: 5 });
    expect(await storage.jobs.counts({ type: JobTypes.billingSubscribe })).toMatchObject({ pending: 0, done: 1, dead: 0 });
    const bills = await sandbox.admin.listRecurringBills(group.id);
    expect(bills.map((b) => [b.price_cents, b.currency])).toEqual([[1000, 'USD']]);
  });
});
