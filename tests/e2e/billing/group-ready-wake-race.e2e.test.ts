/**
 * Two processes on one PostgreSQL database: a web process whose SSO first login creates a
 * group, and a worker process that runs the group's `billing.subscribe` job while that login
 * is still completing the group. The job finds no group yet and defers on the group-ready wait
 * key; the login completes the group and wakes that key while the job is still running (so the
 * wake finds nothing waiting), and the deferral is recorded after it. The subscription must
 * still run now, not after the 10-minute group-ready retry. The interleaving is forced with
 * storage wrappers that pause at a point.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { migrate, prismaAdapter } from '@org/maestrano-adapter-prisma';
import { type Sandbox, startSandbox } from '@org/maestrano-sandbox';
import { createMaestrano, JobTypes, type StorageAdapter, tenantsFromDevPlatform, toNodeListener } from '@org/maestrano-sdk';
import { PrismaPg } from '@prisma/adapter-pg';
import { afterEach, describe, expect, it } from 'vitest';
import { PrismaClient } from '../../../packages/adapter-prisma/test/generated/postgresql/client.js';
import { adminQuery, PG_SERVER_URL, pgUnavailableReason } from '../pg-server.js';

const unavailable = await pgUnavailableReason();
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);

const TENANT = 'wake-race';
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const run of cleanups.splice(0).reverse()) await run();
});

interface Gate {
  reached: Promise<void>;
  release(): void;
  wait(): Promise<void>;
}

function gate(): Gate {
  let hit!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((resolve) => {
    hit = resolve;
  });
  const opened = new Promise<void>((resolve) => {
    release = resolve;
  });
  return {
    reached,
    release,
    wait: async () => {
      hit();
      await opened;
    },
  };
}

async function database(): Promise<{ url: string }> {
  const name = `mno_wake_race_${randomBytes(5).toString('hex')}`;
  await adminQuery(`CREATE DATABASE "${name}"`);
  cleanups.push(() => adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
  const url = new URL(PG_SERVER_URL);
  url.pathname = `/${name}`;
  return { url: url.toString() };
}

/** One "process": its own Prisma client (connection pool) on the shared database. */
async function processStorage(url: string): Promise<StorageAdapter> {
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max: 4 }) });
  cleanups.push(() => prisma.$disconnect());
  return prismaAdapter(prisma);
}

describe.skipIf(unavailable !== null)('a follow-up job deferred while its group is completed in another process', () => {
  it('billing.subscribe running while the login completes the group is not left waiting for the 10-minute retry', async () => {
    const { url } = await database();
    const bootstrap = new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max: 1 }) });
    await migrate({ prisma: bootstrap });
    await bootstrap.$disconnect();

    let handler: ((r: Request) => Promise<Response>) | undefined;
    const server: Server = createServer((req, res) => void toNodeListener((r) => (handler as (r: Request) => Promise<Response>)(r))(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const sandbox: Sandbox = await startSandbox({ port: 0, appUrl, marketplaces: [TENANT] });
    cleanups.push(() => sandbox.stop());
    const tenants = () =>
      tenantsFromDevPlatform({ host: sandbox.url, key: sandbox.credentials.environment.apiKey, secret: sandbox.credentials.environment.apiSecret, refreshMs: 0, logger: silent });

    // The web process: its login pauses right before it completes the group (the company is
    // created and recorded, company.created is queued).
    const webInner = await processStorage(url);
    const beforeComplete = gate();
    const webStorage: StorageAdapter = {
      ...webInner,
      groups: {
        ...webInner.groups,
        complete: async (...args) => {
          await beforeComplete.wait();
          return webInner.groups.complete(...args);
        },
      },
    };
    // The worker process: its billing.subscribe deferral pauses before it is recorded.
    const workerInner = await processStorage(url);
    const beforeDeferral = gate();
    const workerStorage: StorageAdapter = {
      ...workerInner,
      jobs: {
        ...workerInner.jobs,
        fail: async (id, worker, failure) => {
          if (failure.error.code === 'deferred' && failure.waitKey?.startsWith('group-ready:')) await beforeDeferral.wait();
          return workerInner.jobs.fail(id, worker, failure);
        },
      },
    };
    const plans: string[] = [];
    const config = (storage: StorageAdapter, tenantList: Awaited<ReturnType<typeof tenants>>) => ({
      tenants: tenantList,
      storage,
      provisioning: { createCompany: () => ({ id: 'company-1' }), createUser: () => ({ id: 'user-1' }) },
      onLogin: ({ company }: { company: { id: string } }) => Response.json({ companyId: company.id }),
      sso: { allowIdpInitiated: true },
      billing: {
        onCompanyCreated: (company: { groupId: string }) => {
          plans.push(company.groupId);
          return { priceCents: 1000, description: 'Pro plan', currency: 'USD' };
        },
      },
      logger: silent,
    });
    const web = createMaestrano(config(webStorage, await tenants()));
    handler = web.handler;
    const worker = createMaestrano(config(workerStorage, await tenants()));

    const group = await sandbox.admin.createGroup({ marketplace: TENANT, name: 'Race Co' });
    const user = await sandbox.admin.createUser({ memberships: [{ groupId: group.id, role: 'Admin' }] });
    const sso = await sandbox.admin.ssoIdpInitiated({ userId: user.id, groupId: group.id });
    const login = fetch(sso.acsUrl, { method: 'POST', body: new URLSearchParams({ SAMLResponse: sso.samlResponse }), redirect: 'manual' }).then(async (res) => {
      await res.arrayBuffer();
      return res.status;
    });
    await beforeComplete.reached;

    // The worker fans company.created out and runs billing.subscribe: no group yet, deferred.
    const drained = worker.worker.drain({ pollIntervalMs: 5 });
    await beforeDeferral.reached;
    // Meanwhile the login completes the group and wakes its waiting jobs (none is waiting yet).
    beforeComplete.release();
    expect(await login).toBe(200);
    // Then the deferral is recorded.
    beforeDeferral.release();
    await drained;
    await worker.worker.drain({ pollIntervalMs: 5 });

    expect(await workerInner.jobs.counts({ type: JobTypes.billingSubscribe })).toMatchObject({ pending: 0, done: 1, dead: 0 });
    expect(plans).toEqual([group.id]);
    const bills = await sandbox.admin.listRecurringBills(group.id);
    expect(bills.map((b) => [b.price_cents, b.currency])).toEqual([[1000, 'USD']]);
  });
});
