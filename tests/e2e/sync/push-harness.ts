/**
 * Push harness: the sandbox as Connec! (notifications delivered over loopback HTTP to
 * `mno.handler`), memory storage, and an in-memory contacts table whose entity reads the email
 * (`toLocal`) without pushing it (`toConnec`), as the connector guide (§3) allows.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Sandbox, startSandbox } from '@org/maestrano-sandbox';
import {
  type ConflictPolicy,
  type ConflictStrategy,
  createMaestrano,
  createWorker,
  defineConnector,
  defineEntity,
  type Maestrano,
  memoryAdapter,
  type StorageAdapter,
  type SyncModuleConfig,
  tenantsFromDevPlatform,
  toNodeListener,
} from '@org/maestrano-sdk';

export const TENANT = 'push-races';
const silent = { debug() {}, info() {}, warn() {}, error() {} };

export interface Contact {
  id: string;
  firstName: string;
  lastName: string;
  jobTitle: string | null;
  email: string | null;
  updatedAt: Date;
}
type ContactData = Omit<Contact, 'id'> & { id?: string };

interface Person {
  first_name?: string | null;
  last_name?: string | null;
  job_title?: string | null;
  email?: { address?: string | null } | null;
}

export interface PushHarness {
  sandbox: Sandbox;
  mno: Maestrano;
  storage: StorageAdapter;
  groupId: string;
  contacts: Map<string, Contact>;
  /** Makes the next N `local.update` calls throw (a transient app failure). */
  failUpdates: { count: number };
  /** Applies what the sandbox notified: waits for its deliveries, then drains the inbox. */
  deliver(): Promise<void>;
  close(): Promise<void>;
}

export async function startPushHarness(
  options: {
    fetch?: typeof fetch;
    sync?: SyncModuleConfig;
    conflict?: ConflictStrategy<ContactData> | ConflictPolicy<ContactData>;
    /** Entity given `local.get` and `localUpdatedAt` (conflict policies apply). Default true. */
    withGet?: boolean;
    /** The sandbox's largest accepted request body (bytes); larger ones are answered 413. */
    maxBodyBytes?: number;
    /** The entity's `matchingFields` (first pushes merged into a matching Connec! record). */
    matchingFields?: string[];
    /** The memory storage's clock (when jobs come due); the SDK keeps the real one. */
    storageClock?: () => Date;
  } = {},
): Promise<PushHarness> {
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
  const sandbox = await startSandbox({ port: 0, appUrl, marketplaces: [TENANT], retryBaseMs: 50, maxDeliveryAttempts: 8, notifyDelayMs: 10, ...(options.maxBodyBytes ? { maxBodyBytes: options.maxBodyBytes } : {}) });
  const tenants = await tenantsFromDevPlatform({
    host: sandbox.url,
    key: sandbox.credentials.environment.apiKey,
    secret: sandbox.credentials.environment.apiSecret,
    refreshMs: 0,
  });
  const group = await sandbox.admin.createGroup({ marketplace: TENANT, name: 'Push Co' });
  const storage = memoryAdapter(options.storageClock ? { clock: options.storageClock } : {});
  const claim = await storage.groups.claim(TENANT, group.id, { owner: 'test', ttlMs: 60_000 });
  if (claim.state !== 'claimed') throw new Error('claim failed');
  await storage.groups.complete(TENANT, group.id, 'test', { companyId: 'co-1', orgUid: group.orgUid });

  const contacts = new Map<string, Contact>();
  const keys = new Map<string, string>();
  const failUpdates = { count: 0 };
  let seq = 0;
  const withGet = options.withGet ?? true;
  const entity = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'both',
    ...(options.conflict ? { conflict: options.conflict } : {}),
    ...(options.matchingFields ? { matchingFields: options.matchingFields } : {}),
    toLocal: (p: Person): ContactData => ({
      firstName: p.first_name ?? '',
      lastName: p.last_name ?? '',
      jobTitle: p.job_title ?? null,
      email: p.email?.address ?? null,
      updatedAt: new Date(),
    }),
    // The email is read, never pushed (another app owns it).
    toConnec: (c: ContactData) => ({ first_name: c.firstName, last_name: c.lastName, job_title: c.jobTitle }),
    localId: (c: ContactData) => c.id ?? '',
    ...(withGet ? { localUpdatedAt: (c: ContactData) => c.updatedAt } : {}),
    local: {
      create: async (data, ctx) => {
        const existing = keys.get(ctx.idempotencyKey);
        if (existing) return { id: existing };
        const id = `ct-${++seq}`;
        keys.set(ctx.idempotencyKey, id);
        contacts.set(id, { ...data, id, updatedAt: new Date() });
        return { id };
      },
      update: async (id, data) => {
        if (failUpdates.count > 0) {
          failUpdates.count--;
          throw new Error('app database briefly unavailable');
        }
        const row = contacts.get(id);
        if (!row) return { gone: true };
        // An inbound write stamps the row now (as a database `updated_at` column would).
        contacts.set(id, { ...row, ...data, id, updatedAt: new Date() });
        return undefined;
      },
      ...(withGet
        ? {
            get: async (id: string) => {
              const row = contacts.get(id);
              return row ? { ...row } : null;
            },
          }
        : {}),
    },
  });
  const mno: Maestrano = createMaestrano({
    tenants,
    storage,
    ...(options.fetch ? { fetch: options.fetch } : {}),
    provisioning: { createCompany: () => ({ id: 'co-1' }), createUser: () => ({ id: 'u-1' }) },
    onLogin: () => new Response('ok'),
    connector: defineConnector({ entities: [entity] }),
    logger: silent,
    ...(options.sync ? { sync: options.sync } : {}),
  });
  handler = mno.handler;
  const harness: PushHarness = {
    sandbox,
    mno,
    storage,
    groupId: group.id,
    contacts,
    failUpdates,
    async deliver() {
      await sandbox.admin.waitForDeliveries();
      const worker = createWorker(mno.runtime, mno.jobs);
      for (let i = 0; i < 5; i++) {
        await worker.drain({ pollIntervalMs: 5, concurrency: 2, backoff: { baseMs: 10, maxMs: 50 } });
        const counts = await storage.jobs.counts();
        if (counts.pending === 0 && counts.running === 0) return;
        await new Promise((r) => setTimeout(r, 30));
      }
    },
    async close() {
      await sandbox.stop();
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
  return harness;
}
