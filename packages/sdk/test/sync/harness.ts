/**
 * Test harness for the sync engine: a tenant, the memory adapter, an in-memory "app" with
 * companies, contacts, items and invoices tables, entity definitions for them, the sync
 * module wired to a FakeConnec, and the real worker runtime to drain the inbox.
 */
import {
  type ConflictPolicy,
  type ConflictStrategy,
  createSyncModule,
  defineConnector,
  defineEntity,
  type Logger,
  memoryAdapter,
  type Runtime,
  type StorageAdapter,
  type SyncModule,
  type SyncModuleConfig,
  type Tenant,
  staticTenants,
} from '@org/maestrano-sdk';
import { expect } from 'vitest';
import { createWorker, type Worker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';

export const TENANT = 'default';
export const GROUP = 'cld-9a1b';
export const ORG_UID = 'org-f6zi';
export const API_ID = 'myapp';
export const API_KEY = 'secret-key-123';

export function testTenant(name = TENANT, apiId = API_ID, apiKey = API_KEY): Tenant {
  return {
    name,
    nid: null,
    environment: null,
    app: { host: 'http://127.0.0.1:3000' },
    api: { id: apiId, key: apiKey, host: 'http://127.0.0.1:1', base: '/api/v1/' },
    sso: {
      enabled: true,
      sloEnabled: false,
      idm: 'http://127.0.0.1:3000',
      initPath: '/maestrano/auth/saml/init',
      consumePath: '/maestrano/auth/saml/consume',
      idp: 'http://127.0.0.1:1',
      nameIdFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
      creationMode: 'real',
      x509Certificate: null,
      x509Fingerprint: null,
    },
    connec: { enabled: true, host: 'http://127.0.0.1:1', basePath: '/api/v2', timeoutMs: 5000, externalIds: true },
    webhooks: {
      account: { groupPath: '/maestrano/account/groups/:id', groupUserPath: '/maestrano/account/groups/:group_id/users/:id' },
      connec: { notificationPath: '/maestrano/connec/notifications', initializationPath: null },
    },
  };
}

export interface Company {
  id: string;
  name: string;
  code: string | null;
  updatedAt: Date;
}
type CompanyData = Omit<Company, 'id'> & { id?: string };
export interface Contact {
  id: string;
  firstName: string;
  lastName: string;
  jobTitle: string | null;
  email: string | null;
  companyId: string | null;
  updatedAt: Date;
}
export interface Line {
  id: string | null;
  itemId: string | null;
  description: string | null;
  quantity: number;
}
export interface Invoice {
  id: string;
  number: string;
  contactId: string | null;
  lines: Line[];
}
export interface ItemRow {
  id: string;
  name: string;
  archived: boolean;
}

/** The app's own tables, with write counters so tests can assert "no second write". */
export class LocalApp {
  companies = new Map<string, Company>();
  contacts = new Map<string, Contact>();
  items = new Map<string, ItemRow>();
  invoices = new Map<string, Invoice>();
  writes = { create: 0, update: 0 };
  /** idempotency key -> local id (exactly-once creates across crashes) */
  keys = new Map<string, string>();
  private seq = 0;
  /** Throws in the contact mapper for this last name (a per-record mapper bug). */
  poisonLastName: string | null = null;
  /** Local ids whose update answers "gone" (deleted in the app). */
  deleted = new Set<string>();

  nextId(prefix: string): string {
    this.seq++;
    return `${prefix}-${this.seq}`;
  }

  create<T extends { id: string }>(table: Map<string, T>, prefix: string, data: Omit<T, 'id'>, key: string): { id: string } {
    const existing = this.keys.get(key);
    if (existing) return { id: existing };
    const id = this.nextId(prefix);
    table.set(id, { ...data, id } as T);
    this.keys.set(key, id);
    this.writes.create++;
    return { id };
  }
}

type PersonRecord = Record<string, unknown> & {
  first_name?: string | null;
  last_name?: string | null;
  job_title?: string | null;
  email?: { address?: string | null } | null;
  organization_id?: unknown;
};

export interface HarnessOptions {
  sync?: SyncModuleConfig;
  contactConflict?: ConflictStrategy<Omit<Contact, 'id'>> | ConflictPolicy<Omit<Contact, 'id'>>;
  storage?: StorageAdapter;
  clock?: () => Date;
  /** Default: silent. */
  logger?: Logger;
  /** The invoices' `local.update` returns nothing (no `subIds`), as the docs allow. */
  invoiceUpdateReturnsNothing?: boolean;
}

export function buildConnector(app: LocalApp, options: HarnessOptions = {}) {
  const companies = defineEntity({
    name: 'companies',
    connec: 'organizations',
    direction: 'both',
    matchingFields: ['name'],
    toLocal: (org: Record<string, unknown>): CompanyData => ({
      name: String(org.name ?? ''),
      code: typeof org.code === 'string' ? org.code : null,
      updatedAt: new Date(),
    }),
    toConnec: (company: CompanyData) => ({ name: company.name }),
    localId: (company: CompanyData) => company.id ?? '',
    local: {
      create: async (data, ctx) =>
        app.create(app.companies, 'org', { name: data.name, code: data.code, updatedAt: data.updatedAt }, ctx.idempotencyKey),
      update: async (id, data) => {
        const row = app.companies.get(id);
        if (!row) return { gone: true };
        app.companies.set(id, { ...row, name: data.name, code: data.code, id });
        app.writes.update++;
        return undefined;
      },
      async *list() {
        yield [...app.companies.values()];
      },
    },
  });

  const contacts = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'both',
    references: { organization_id: 'companies' },
    ...(options.contactConflict ? { conflict: options.contactConflict } : {}),
    toLocal: (p: PersonRecord): Omit<Contact, 'id'> => {
      if (app.poisonLastName !== null && p.last_name === app.poisonLastName) throw new Error('mapper bug: cannot map this person');
      return {
        firstName: p.first_name ?? '',
        lastName: p.last_name ?? '',
        jobTitle: p.job_title ?? null,
        email: p.email?.address ?? null,
        companyId: typeof p.organization_id === 'string' ? p.organization_id : null,
        updatedAt: new Date(0),
      };
    },
    toConnec: (c: Omit<Contact, 'id'> & { id?: string }) => ({
      first_name: c.firstName,
      last_name: c.lastName,
      job_title: c.jobTitle,
      email: c.email ? { address: c.email } : undefined,
      organization_id: c.companyId,
    }),
    localId: (c: Omit<Contact, 'id'> & { id?: string }) => c.id ?? '',
    localUpdatedAt: (c) => c.updatedAt,
    local: {
      create: async (data, ctx) => app.create(app.contacts, 'per', data, ctx.idempotencyKey),
      update: async (id, data) => {
        if (app.deleted.has(id)) return { gone: true };
        const row = app.contacts.get(id);
        if (!row) return { gone: true };
        app.contacts.set(id, { ...row, ...data, updatedAt: row.updatedAt, id });
        app.writes.update++;
        return undefined;
      },
      get: async (id) => app.contacts.get(id) ?? null,
    },
  });

  const items = defineEntity({
    name: 'items',
    connec: 'items',
    direction: 'inbound',
    toLocal: (item: Record<string, unknown>) => ({ name: String(item.name ?? ''), archived: item.status === 'INACTIVE' }),
    local: {
      create: async (data, ctx) => app.create(app.items, 'sku', data, ctx.idempotencyKey),
      update: async (id, data) => {
        const row = app.items.get(id);
        if (!row) return { gone: true };
        app.items.set(id, { ...row, ...data, id });
        app.writes.update++;
        return undefined;
      },
    },
  });

  type LineIn = { id?: unknown; item_id?: unknown; description?: unknown; quantity?: unknown };
  const invoices = defineEntity({
    name: 'invoices',
    connec: 'invoices',
    direction: 'inbound',
    references: { person_id: 'contacts', 'lines/item_id': 'items' },
    subRecords: ['lines'],
    toLocal: (inv: Record<string, unknown>): Omit<Invoice, 'id'> => ({
      number: String(inv.transaction_number ?? ''),
      contactId: typeof inv.person_id === 'string' ? inv.person_id : null,
      lines: (Array.isArray(inv.lines) ? (inv.lines as LineIn[]) : []).map((l) => ({
        id: typeof l.id === 'string' ? l.id : null,
        itemId: typeof l.item_id === 'string' ? l.item_id : null,
        description: typeof l.description === 'string' ? l.description : null,
        quantity: typeof l.quantity === 'number' ? l.quantity : 0,
      })),
    }),
    local: {
      create: async (data, ctx) => {
        const had = app.keys.get(ctx.idempotencyKey);
        const row = had ? app.invoices.get(had) : undefined;
        if (row) return { id: row.id, subIds: { lines: row.lines.map((l) => l.id) } };
        const lines = data.lines.map((l) => ({ ...l, id: app.nextId('ln') }));
        const { id } = app.create(app.invoices, 'inv', { ...data, lines }, ctx.idempotencyKey);
        return { id, subIds: { lines: lines.map((l) => l.id) } };
      },
      update: async (id, data) => {
        const row = app.invoices.get(id);
        if (!row) return { gone: true };
        const lines = data.lines.map((l) => ({ ...l, id: l.id ?? app.nextId('ln') }));
        app.invoices.set(id, { ...row, ...data, lines, id });
        app.writes.update++;
        return options.invoiceUpdateReturnsNothing ? undefined : { subIds: { lines: lines.map((l) => l.id) } };
      },
    },
  });

  return defineConnector({ entities: [contacts, invoices, companies, items] });
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export interface Harness {
  app: LocalApp;
  connec: FakeConnec;
  storage: StorageAdapter;
  runtime: Runtime;
  sync: SyncModule;
  /** The connector the sync runs, for tests that wrap an entity's `local.*` functions. */
  connector: ReturnType<typeof buildConnector>;
  /** Runs the worker until no job is pending (parked jobs included, within `rounds`). */
  drain(rounds?: number): Promise<void>;
  notify(body: unknown, auth?: { id: string; key: string }): Promise<Response>;
}

export async function provisionGroup(storage: StorageAdapter, groupId = GROUP, settings: Record<string, never> | object = {}) {
  const claim = await storage.groups.claim(TENANT, groupId, { owner: 'test', ttlMs: 60_000 });
  if (claim.state !== 'claimed') throw new Error('group already provisioned');
  // settings is JSON by construction in tests
  return storage.groups.complete(TENANT, groupId, 'test', { companyId: `co-${groupId}`, orgUid: ORG_UID, settings: JSON.parse(JSON.stringify(settings)) });
}

/** A runtime over `storage` with the test tenant and a silent logger. */
export function testRuntime(storage: StorageAdapter, clock: () => Date = () => new Date(), instanceId = 'test-instance'): Runtime {
  return { tenants: staticTenants([testTenant()]), storage, logger: silentLogger, clock, instanceId, fetch: globalThis.fetch };
}

export async function createHarness(options: HarnessOptions = {}): Promise<Harness> {
  const app = new LocalApp();
  const connec = new FakeConnec(ORG_UID);
  const clock = options.clock ?? (() => new Date());
  const storage = options.storage ?? memoryAdapter({ clock });
  const runtime = { ...testRuntime(storage, clock), ...(options.logger ? { logger: options.logger } : {}) };
  const connector = buildConnector(app, options);
  const sync = createSyncModule(runtime, {
    connector,
    sync: { connecPort: () => connec, parkRetryMs: 5, maxAttempts: 4, ...options.sync },
  });
  const drain = drainer(createWorker(runtime, sync.jobs ?? {}), storage);
  const notify = notifier(sync);
  return { app, connec, storage, runtime, sync, connector, drain, notify };
}

/**
 * Runs `worker` until no job is pending or running (parked jobs waited for, within `rounds`
 * passes), with fast retries.
 */
export function drainer(worker: { drain: Worker['drain'] }, storage: StorageAdapter, backoff = { baseMs: 2, maxMs: 20 }) {
  return async (rounds = 200): Promise<void> => {
    for (let i = 0; i < rounds; i++) {
      await worker.drain({ pollIntervalMs: 1, concurrency: 4, backoff });
      const counts = await storage.jobs.counts();
      if (counts.pending === 0 && counts.running === 0) return;
      await new Promise((r) => setTimeout(r, 5));
    }
  };
}

/**
 * What a job that crashes its process goes through: claimed `attempts` times by workers that
 * die, `expireLease()` moving the clock past each lease so the next claim takes it over.
 */
export async function crashRuns(storage: StorageAdapter, type: string, attempts: number, expireLease: () => void): Promise<void> {
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const [job] = await storage.jobs.claim({ worker: `crashing-${attempt}`, limit: 5, leaseMs: 1_000, types: [type] });
    expect(job?.attempts).toBe(attempt);
    expireLease();
  }
}

/** Posts a notification body (JSON, or raw text) to a sync module's route as the test tenant. */
export function notifier(sync: { routes?: SyncModule['routes'] }) {
  const route = sync.routes?.connecNotification;
  if (!route) throw new Error('no notification route');
  return (body: unknown, auth = { id: API_ID, key: API_KEY }) =>
    route({
      request: new Request('http://127.0.0.1/maestrano/connec/notifications/default', {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${auth.id}:${auth.key}`).toString('base64')}`,
          'content-type': 'application/json',
        },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      }),
      tenant: testTenant(),
      params: {},
    });
}

/** `[{id, provider:'connec', realm}]` */
export const C = (id: string) => ({ id, provider: 'connec', realm: ORG_UID });
/** our own id entry */
export const A = (id: string, groupId = GROUP) => ({ id, provider: API_ID, realm: groupId });

/** `storage` as seen by a process that dies when `dead()` turns true: every later call hangs. */
export function dyingView(storage: StorageAdapter, dead: () => boolean): StorageAdapter {
  const view = (target: object): object =>
    new Proxy(target, {
      get(obj, key) {
        const value = Reflect.get(obj, key);
        if (typeof value === 'function') return (...args: unknown[]) => (dead() ? new Promise(() => {}) : value.apply(obj, args));
        if (value !== null && typeof value === 'object') return view(value);
        return value;
      },
    });
  return view(storage) as StorageAdapter;
}

/** `storage` whose `jobs.listDead` ignores `groupId`, like an adapter written before that filter existed. */
export function withoutGroupFilter(storage: StorageAdapter): StorageAdapter {
  return {
    ...storage,
    jobs: {
      ...storage.jobs,
      listDead: (filter) => {
        const { groupId: _ignored, ...rest } = filter ?? {};
        return storage.jobs.listDead(rest);
      },
    },
  };
}

/** Jane Doe (Connec! `p9`, Engineer, updated 08:59:59) notified and applied in the harness's app. */
export async function linkedJane(h: Harness): Promise<{ localId: string; seeded: ReturnType<Harness['connec']['seed']> }> {
  h.connec.setClock('2016-10-04T08:59:59Z');
  const seeded = h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe', job_title: 'Engineer' }, 'p9');
  await h.notify({ people: [seeded] });
  await h.drain();
  const localId = (await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { connecId: 'p9' }))?.localId ?? '';
  return { localId, seeded };
}

/**
 * Makes the fake Connec! apply the next `lost.count` batch calls, then answer each with a 503:
 * a push whose answer is lost after Connec! applied it.
 */
export function loseAnswers(connec: FakeConnec): { count: number } {
  const lost = { count: 0 };
  const batch = connec.batch.bind(connec);
  connec.batch = async (ops) => {
    const results = await batch(ops);
    if (lost.count === 0) return results;
    lost.count--;
    return results.map(() => ({ status: 503, record: null, error: 'Service Unavailable' }));
  };
  return lost;
}
