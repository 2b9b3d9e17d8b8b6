/**
 * The app (the e2e sync app: PostgreSQL app tables with a write log, the contacts/companies
 * connector) on a throwaway database whose SDK storage goes through a cuttable TCP proxy, the
 * sandbox platform beside it, and an in-process worker that survives storage outages.
 */
import { type Sandbox, startSandbox } from '@org/maestrano-sandbox';
import { createWorker, type Maestrano, type SyncModuleConfig, type TenantRegistry, tenantsFromDevPlatform } from '@org/maestrano-sdk';
import { AppDb, createApp } from '../../e2e/sync/app.js';
import { type Served, serve } from './http.js';
import { type CutProxy, createDatabase, type PrismaStorage, prismaStorage, startCutProxy, type TestDatabase } from './pg.js';

export const TENANT = 'rel-platform';

export interface Platform {
  db: TestDatabase;
  proxy: CutProxy;
  appDb: AppDb;
  storage: PrismaStorage;
  sandbox: Sandbox;
  served: Served;
  tenants: TenantRegistry;
  mno: Maestrano;
  /** Runs the in-process worker until no job is pending or running (errors while storage is down are retried). */
  drain(timeoutMs?: number): Promise<void>;
  provisionGroup(name: string): Promise<{ groupId: string; userId: string }>;
  login(userId: string, groupId: string): Promise<number>;
  /** Counts straight from the database (not through the proxy). */
  contactMaps(groupId: string): Promise<number>;
  close(): Promise<void>;
}

export async function startPlatform(options: { sync?: SyncModuleConfig; maxDeliveryAttempts?: number } = {}): Promise<Platform> {
  const db = await createDatabase('platform');
  const proxy = await startCutProxy();
  const appDb = new AppDb(db.url);
  await appDb.init();
  const storage = await prismaStorage(db.urlVia(proxy.port));
  const served = await serve();
  const sandbox = await startSandbox({
    port: 0,
    appUrl: served.url,
    marketplaces: [TENANT],
    retryBaseMs: 100,
    maxDeliveryAttempts: options.maxDeliveryAttempts ?? 12,
    notifyDelayMs: 20,
  });
  const tenants = await tenantsFromDevPlatform({
    host: sandbox.url,
    key: sandbox.credentials.environment.apiKey,
    secret: sandbox.credentials.environment.apiSecret,
    refreshMs: 0,
  });
  const mno = createApp({ tenants, storage: storage.storage, db: appDb, sync: { importLockTtlMs: 1000, ...options.sync } });
  served.setHandler(mno.handler);

  const platform: Platform = {
    db,
    proxy,
    appDb,
    storage,
    sandbox,
    served,
    tenants,
    mno,
    async drain(timeoutMs = 120_000) {
      const worker = createWorker(mno.runtime, mno.jobs);
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        try {
          await worker.drain({ pollIntervalMs: 5, concurrency: 4, leaseMs: 2_000, backoff: { baseMs: 20, maxMs: 300 } });
          const counts = await storage.storage.jobs.counts();
          if (counts.pending === 0 && counts.running === 0) return;
        } catch {
          // Storage unavailable: try again shortly.
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('the worker did not drain in time');
    },
    async provisionGroup(name) {
      const group = await sandbox.admin.createGroup({ marketplace: TENANT, name });
      const user = await sandbox.admin.createUser({ memberships: [{ groupId: group.id, role: 'Admin' }] });
      const status = await platform.login(user.id, group.id);
      if (status !== 200) throw new Error(`SSO login failed with ${status}`);
      return { groupId: group.id, userId: user.id };
    },
    async login(userId, groupId) {
      const login = await sandbox.admin.ssoIdpInitiated({ userId, groupId });
      const res = await fetch(login.acsUrl, { method: 'POST', body: new URLSearchParams({ SAMLResponse: login.samlResponse }), redirect: 'manual' });
      await res.arrayBuffer();
      return res.status;
    },
    async contactMaps(groupId) {
      const rows = await db.sql<{ n: number }>(
        "SELECT count(*)::int AS n FROM maestrano_id_maps WHERE tenant = $1 AND group_id = $2 AND entity = 'contacts' AND local_id IS NOT NULL",
        [TENANT, groupId],
      );
      return rows[0]?.n ?? 0;
    },
    async close() {
      await sandbox.stop();
      await served.close();
      await storage.close();
      await proxy.close();
      await appDb.close();
      await db.drop();
    },
  };
  return platform;
}

/** Creates `n` people in Connec! as another party, 10 at a time (the sandbox notifies the app). */
export async function createPeople(sandbox: Sandbox, groupId: string, n: number, tag: string): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < n; start += 10) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(10, n - start) }, (_v, i) => sandbox.admin.createRecord(groupId, 'people', { first_name: `${tag}${start + i}`, last_name: tag })),
    );
    ids.push(...batch.map((r) => String(r.id)));
  }
  return ids;
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
