/**
 * Sync end-to-end harness: a throwaway PostgreSQL database (app tables, and storage when
 * `storage: 'postgres'`), the app served over loopback HTTP through `mno.handler`, and the
 * sandbox (Connec!, notifications sender, IdP) on another port. Worker processes can be
 * spawned against the same database.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type Sandbox, startSandbox } from '@org/maestrano-sandbox';
import { createWorker, type Maestrano, type StorageAdapter, type SyncModuleConfig, tenantsFromDevPlatform, toNodeListener } from '@org/maestrano-sdk';
import { type AnyConnector, AppDb, appConnector, createApp, memoryAdapter, mongoStorage, postgresStorage, sqliteStorage } from './app.js';
import { adminQuery, PG_SERVER_URL } from '../pg-server.js';

export const TENANT = 'sync-e2e';


export interface SyncHarness {
  sandbox: Sandbox;
  mno: Maestrano;
  storage: StorageAdapter;
  db: AppDb;
  databaseUrl: string;
  appUrl: string;
  /** Runs an in-process worker until nothing is due (parked jobs waited for up to `rounds`). */
  drain(rounds?: number): Promise<void>;
  /** A new group with one admin user, logged in through SSO (provisions the company). */
  provisionGroup(name?: string): Promise<{ groupId: string; userId: string }>;
  login(userId: string, groupId: string): Promise<number>;
  /**
   * With `paused`, the worker starts claiming only on `child.kill('SIGUSR2')`. With
   * `createDelayMs` (`updateDelayMs`), each contact create (update) in that worker waits that
   * long after committing. With `createStallAfter`, its contact creates hang for good (after
   * committing) from the n-th one on. `leaseMs` is the worker's job lease and record lock TTL
   * (3 s by default, so that a killed worker's jobs come back within seconds). `batchSize` is
   * the worker's (the SDK's default unless set). With `createBarrierWriters`, the worker's first
   * contact create waits (after committing) until that many processes have created contacts.
   */
  spawnWorker(options?: {
    concurrency?: number;
    paused?: boolean;
    createDelayMs?: number;
    updateDelayMs?: number;
    createStallAfter?: number;
    leaseMs?: number;
    batchSize?: number;
    createBarrierWriters?: number;
    /** The worker's connector has the invoices entity too (`appConnector(db, { invoices: true })`). */
    invoices?: boolean;
    /**
     * The worker hangs for good once an id-map write of invoices has committed (before the
     * link-back), writing `stalled after the invoice map write` on stdout: the moment to kill it.
     */
    stallAfterInvoiceMap?: boolean;
  }): Promise<ChildProcess>;
  close(): Promise<void>;
}

export type StorageKind = 'memory' | 'postgres' | 'sqlite' | 'mongo';

export async function startSyncHarness(options: {
  storage: StorageKind;
  sync?: SyncModuleConfig;
  seed?: { records: number; groups: number };
  /** Replaces the app's companies/contacts connector (in-process workers only: spawned ones use the app's). */
  connector?: AnyConnector;
  /** Notifications (and Connec!'s answers to the app) in the id-array format; `false`: plain ids. */
  externalIds?: boolean;
  /** The app's connector has the invoices entity too (as workers spawned with `invoices`). */
  invoices?: boolean;
}): Promise<SyncHarness> {
  const dbName = `mno_sync_${randomBytes(5).toString('hex')}`;
  await adminQuery(`CREATE DATABASE "${dbName}"`);
  const url = new URL(PG_SERVER_URL);
  url.pathname = `/${dbName}`;
  const databaseUrl = url.toString();
  const db = new AppDb(databaseUrl);
  await db.init();
  const storageHandle =
    options.storage === 'postgres'
      ? await postgresStorage(databaseUrl)
      : options.storage === 'sqlite'
        ? await sqliteStorage()
        : options.storage === 'mongo'
          ? await mongoStorage()
          : { storage: memoryAdapter(), close: async () => {} };

  let handler: ((request: Request) => Promise<Response>) | undefined;
  const server: Server = createServer((req, res) => {
    const h = handler;
    if (!h) {
      res.statusCode = 503;
      res.end();
      return;
    }
    void toNodeListener(h)(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const sandbox = await startSandbox({
    port: 0,
    appUrl,
    marketplaces: [TENANT],
    retryBaseMs: 50,
    maxDeliveryAttempts: 8,
    notifyDelayMs: 20,
    ...(options.externalIds === undefined ? {} : { externalIds: options.externalIds }),
    ...(options.seed ? { seed: options.seed } : {}),
  });
  const devPlatform = { host: sandbox.url, key: sandbox.credentials.environment.apiKey, secret: sandbox.credentials.environment.apiSecret };
  const tenants = await tenantsFromDevPlatform({ ...devPlatform, refreshMs: 0 });
  const connector = options.connector ?? (options.invoices ? appConnector(db, { invoices: true }) : undefined);
  const mno = createApp({ tenants, storage: storageHandle.storage, db, ...(options.sync ? { sync: options.sync } : {}), ...(connector ? { connector } : {}) });
  handler = mno.handler;
  const children = new Set<ChildProcess>();

  const harness: SyncHarness = {
    sandbox,
    mno,
    storage: storageHandle.storage,
    db,
    databaseUrl,
    appUrl,
    async drain(rounds = 100) {
      const worker = createWorker(mno.runtime, mno.jobs);
      for (let i = 0; i < rounds; i++) {
        await worker.drain({ pollIntervalMs: 5, concurrency: 4, backoff: { baseMs: 20, maxMs: 300 } });
        const counts = await storageHandle.storage.jobs.counts();
        if (counts.pending === 0 && counts.running === 0) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async provisionGroup(name = 'Acme') {
      const group = await sandbox.admin.createGroup({ marketplace: TENANT, name });
      const user = await sandbox.admin.createUser({ memberships: [{ groupId: group.id, role: 'Admin' }] });
      const status = await harness.login(user.id, group.id);
      if (status !== 200) throw new Error(`SSO login failed with ${status}`);
      return { groupId: group.id, userId: user.id };
    },
    async login(userId, groupId) {
      const login = await sandbox.admin.ssoIdpInitiated({ userId, groupId });
      const res = await fetch(login.acsUrl, { method: 'POST', body: new URLSearchParams({ SAMLResponse: login.samlResponse }), redirect: 'manual' });
      await res.arrayBuffer();
      return res.status;
    },
    async spawnWorker({
      concurrency = 4,
      paused = false,
      createDelayMs = 0,
      updateDelayMs = 0,
      createStallAfter = 0,
      leaseMs = 3_000,
      batchSize,
      createBarrierWriters = 0,
      invoices = false,
      stallAfterInvoiceMap = false,
    } = {}) {
      const entry = fileURLToPath(new URL('./worker-process.ts', import.meta.url));
      const child = spawn(process.execPath, ['--conditions=@org/source', '--import', 'tsx', entry], {
        cwd: fileURLToPath(new URL('../../..', import.meta.url)),
        env: {
          ...process.env,
          SYNC_E2E_DATABASE_URL: databaseUrl,
          SYNC_E2E_DEVPL_HOST: devPlatform.host,
          SYNC_E2E_DEVPL_KEY: devPlatform.key,
          SYNC_E2E_DEVPL_SECRET: devPlatform.secret,
          SYNC_E2E_CONCURRENCY: String(concurrency),
          SYNC_E2E_PAUSED: paused ? '1' : '0',
          SYNC_E2E_CREATE_DELAY_MS: String(createDelayMs),
          SYNC_E2E_UPDATE_DELAY_MS: String(updateDelayMs),
          SYNC_E2E_CREATE_STALL_AFTER: String(createStallAfter),
          SYNC_E2E_LEASE_MS: String(leaseMs),
          SYNC_E2E_BATCH_SIZE: batchSize === undefined ? '' : String(batchSize),
          SYNC_E2E_CREATE_BARRIER_WRITERS: String(createBarrierWriters),
          SYNC_E2E_INVOICES: invoices ? '1' : '0',
          SYNC_E2E_STALL_AFTER_INVOICE_MAP: stallAfterInvoiceMap ? '1' : '0',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(child);
      child.on('exit', () => children.delete(child));
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`worker process did not start: ${stderr}`)), 60_000);
        child.stdout?.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('worker ready')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.on('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`worker process exited with ${code}: ${stderr}`));
        });
      });
      return child;
    },
    async close() {
      for (const child of children) child.kill('SIGKILL');
      await sandbox.stop();
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      await storageHandle.close();
      await db.close();
      await adminQuery(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    },
  };
  return harness;
}

/** Polls `check` until it returns true (or throws after `timeoutMs`, with `what` in the message). */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Sends SIGTERM and waits for the exit. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
