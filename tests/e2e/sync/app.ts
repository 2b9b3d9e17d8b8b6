/**
 * The "integrator's app" used by the sync end-to-end tests, shared by the test process and the
 * worker processes it spawns: companies and contacts tables in PostgreSQL (so several processes
 * see one app database), an append-only write log (to prove nothing is applied twice), entity
 * definitions for them, and `createMaestrano` wired to memory or PostgreSQL (adapter-prisma) storage.
 */
import { mongoAdapter } from '@org/maestrano-adapter-mongo';
import { migrate, prismaAdapter } from '@org/maestrano-adapter-prisma';
import {
  createMaestrano,
  defineConnector,
  defineEntity,
  type Maestrano,
  memoryAdapter,
  type StorageAdapter,
  type SyncModuleConfig,
  type TenantRegistry,
} from '@org/maestrano-sdk';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaPg } from '@prisma/adapter-pg';
import Database from 'better-sqlite3';
import pg from 'pg';
import { PrismaClient } from '../../../packages/adapter-prisma/test/generated/postgresql/client.js';
import { FerretDbServer, findFerretDb } from '../../../packages/adapter-mongo/test/ferretdb.js';
import { PrismaClient as SqlitePrismaClient } from '../../../packages/adapter-prisma/test/generated/sqlite/client.js';

export interface Company {
  id: string;
  name: string;
}
export interface Contact {
  id?: string;
  firstName: string;
  lastName: string;
  jobTitle: string | null;
  companyId: string | null;
  updatedAt: Date;
}

export const APP_SCHEMA = `
CREATE TABLE IF NOT EXISTS app_companies (
  id bigserial PRIMARY KEY, idem_key text UNIQUE, name text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS app_contacts (
  id bigserial PRIMARY KEY, idem_key text UNIQUE, first_name text, last_name text, job_title text,
  company_id text, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS app_writes (
  seq bigserial PRIMARY KEY, entity text NOT NULL, local_id text NOT NULL, kind text NOT NULL, pid int NOT NULL);
CREATE TABLE IF NOT EXISTS app_create_repeats (
  seq bigserial PRIMARY KEY, entity text NOT NULL, idem_key text NOT NULL, pid int NOT NULL);
CREATE TABLE IF NOT EXISTS app_invoices (
  id bigserial PRIMARY KEY, idem_key text UNIQUE, number text NOT NULL);
CREATE TABLE IF NOT EXISTS app_invoice_lines (
  id bigserial PRIMARY KEY, invoice_id bigint NOT NULL REFERENCES app_invoices(id), position int NOT NULL,
  description text, quantity numeric NOT NULL DEFAULT 0);
`;

/** An invoice line as the app holds it: its own id, or null for a line the app has not created yet. */
export interface InvoiceLine {
  id: string | null;
  description: string;
  quantity: number;
}
export interface Invoice {
  number: string;
  lines: InvoiceLine[];
}

export class AppDb {
  readonly pool: pg.Pool;
  readonly #createDelayMs: number;
  readonly #updateDelayMs: number;
  readonly #createStallAfter: number;
  readonly #createBarrierWriters: number;
  #barrierPassed = false;
  #created = 0;
  /**
   * `createDelayMs` keeps each contact create waiting that long after its row committed (a slow
   * app). `updateDelayMs` does the same for each contact update. With `createStallAfter`, the
   * contact creates of this process hang for good (after committing) from the n-th row it
   * inserted on: the kill tests use it so that a worker is still mid-batch when the signal
   * lands, however late the test gets to send it (a delay alone left a few hundred ms of work,
   * which a loaded machine could spend between the test's check and its kill).
   * With `createBarrierWriters`, this process's first contact create waits (after committing)
   * until that many processes have created contacts: a barrier that makes several worker
   * processes all take part however the scheduler orders their first claims.
   */
  constructor(databaseUrl: string, options: { createDelayMs?: number; updateDelayMs?: number; createStallAfter?: number; createBarrierWriters?: number } = {}) {
    this.pool = new pg.Pool({ connectionString: databaseUrl, max: 8 });
    this.#createDelayMs = options.createDelayMs ?? 0;
    this.#updateDelayMs = options.updateDelayMs ?? 0;
    this.#createStallAfter = options.createStallAfter ?? 0;
    this.#createBarrierWriters = options.createBarrierWriters ?? 0;
    // The test drops the database WITH (FORCE) at the end; a connection terminated then is expected.
    this.pool.on('error', () => {});
  }
  async init(): Promise<void> {
    await this.pool.query(APP_SCHEMA);
  }
  /** Idempotent on `key` (the engine's idempotency key): a repeated create returns the first row. */
  async createCompany(key: string, name: string): Promise<string> {
    // One statement: the row and its write-log entry commit together (a crash cannot split them).
    const inserted = await this.pool.query<{ id: string }>(
      `WITH ins AS (INSERT INTO app_companies (idem_key, name) VALUES ($1, $2) ON CONFLICT (idem_key) DO NOTHING RETURNING id::text AS id)
       INSERT INTO app_writes (entity, local_id, kind, pid) SELECT 'companies', id, 'create', $3 FROM ins RETURNING local_id AS id`,
      [key, name, process.pid],
    );
    const row = inserted.rows[0];
    if (row) return row.id;
    await this.pool.query("INSERT INTO app_create_repeats (entity, idem_key, pid) VALUES ('companies', $1, $2)", [key, process.pid]);
    const existing = await this.pool.query<{ id: string }>('SELECT id::text FROM app_companies WHERE idem_key = $1', [key]);
    return existing.rows[0]?.id ?? '';
  }
  async updateCompany(id: string, name: string): Promise<boolean> {
    const res = await this.pool.query(
      `WITH up AS (UPDATE app_companies SET name = $2, updated_at = now() WHERE id = $1 RETURNING id::text AS id)
       INSERT INTO app_writes (entity, local_id, kind, pid) SELECT 'companies', id, 'update', $3 FROM up`,
      [id, name, process.pid],
    );
    return (res.rowCount ?? 0) > 0;
  }
  async createContact(key: string | null, c: Contact): Promise<string> {
    const inserted = await this.pool.query<{ id: string }>(
      `WITH ins AS (INSERT INTO app_contacts (idem_key, first_name, last_name, job_title, company_id) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (idem_key) DO NOTHING RETURNING id::text AS id)
       INSERT INTO app_writes (entity, local_id, kind, pid) SELECT 'contacts', id, 'create', $6 FROM ins RETURNING local_id AS id`,
      [key, c.firstName, c.lastName, c.jobTitle, c.companyId, process.pid],
    );
    if (this.#createDelayMs > 0) await new Promise((r) => setTimeout(r, this.#createDelayMs));
    const row = inserted.rows[0];
    if (this.#createBarrierWriters > 0 && row) await this.#barrier();
    // Counts the rows this process inserted (not a repeated create of a killed worker's record).
    if (this.#createStallAfter > 0 && row && ++this.#created >= this.#createStallAfter) await new Promise(() => {});
    if (row) return row.id;
    if (key !== null) await this.pool.query("INSERT INTO app_create_repeats (entity, idem_key, pid) VALUES ('contacts', $1, $2)", [key, process.pid]);
    const existing = await this.pool.query<{ id: string }>('SELECT id::text FROM app_contacts WHERE idem_key = $1', [key]);
    return existing.rows[0]?.id ?? '';
  }
  /**
   * Idempotent on `key`: the invoice and its lines in one transaction (with a write-log entry per
   * line created), or the rows of the first create. Returns the line ids in the order given.
   */
  async createInvoice(key: string, invoice: Invoice): Promise<{ id: string; lineIds: string[] }> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const inserted = await client.query<{ id: string }>('INSERT INTO app_invoices (idem_key, number) VALUES ($1, $2) ON CONFLICT (idem_key) DO NOTHING RETURNING id::text', [key, invoice.number]);
      let id = inserted.rows[0]?.id;
      if (id === undefined) {
        await client.query('ROLLBACK');
        await this.pool.query("INSERT INTO app_create_repeats (entity, idem_key, pid) VALUES ('invoices', $1, $2)", [key, process.pid]);
        const existing = await this.pool.query<{ id: string }>('SELECT id::text FROM app_invoices WHERE idem_key = $1', [key]);
        id = existing.rows[0]?.id ?? '';
        return { id, lineIds: (await this.invoiceLines(id)).map((l) => l.id ?? '') };
      }
      await client.query("INSERT INTO app_writes (entity, local_id, kind, pid) VALUES ('invoices', $1, 'create', $2)", [id, process.pid]);
      const lineIds: string[] = [];
      for (const [position, line] of invoice.lines.entries()) lineIds.push(await this.#insertLine(client, id, position, line));
      await client.query('COMMIT');
      return { id, lineIds };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }
  /** Updates the invoice: lines with an id are updated, lines without one created; returns the line ids, or null when the invoice is gone. */
  async updateInvoice(id: string, invoice: Invoice): Promise<string[] | null> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const res = await client.query('UPDATE app_invoices SET number = $2 WHERE id = $1', [id, invoice.number]);
      if ((res.rowCount ?? 0) === 0) {
        await client.query('ROLLBACK');
        return null;
      }
      await client.query("INSERT INTO app_writes (entity, local_id, kind, pid) VALUES ('invoices', $1, 'update', $2)", [id, process.pid]);
      const lineIds: string[] = [];
      for (const [position, line] of invoice.lines.entries()) {
        if (line.id === null) lineIds.push(await this.#insertLine(client, id, position, line));
        else {
          await client.query('UPDATE app_invoice_lines SET position = $3, description = $4, quantity = $5 WHERE id = $1 AND invoice_id = $2', [line.id, id, position, line.description, line.quantity]);
          lineIds.push(line.id);
        }
      }
      await client.query('COMMIT');
      return lineIds;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }
  async #insertLine(client: pg.PoolClient, invoiceId: string, position: number, line: InvoiceLine): Promise<string> {
    const row = await client.query<{ id: string }>('INSERT INTO app_invoice_lines (invoice_id, position, description, quantity) VALUES ($1, $2, $3, $4) RETURNING id::text', [
      invoiceId,
      position,
      line.description,
      line.quantity,
    ]);
    const lineId = row.rows[0]?.id ?? '';
    await client.query("INSERT INTO app_writes (entity, local_id, kind, pid) VALUES ('invoice_lines', $1, 'create', $2)", [lineId, process.pid]);
    return lineId;
  }
  /** The invoice's lines, in their order. */
  async invoiceLines(id: string): Promise<(InvoiceLine & { id: string })[]> {
    const res = await this.pool.query<{ id: string; description: string | null; quantity: string }>(
      'SELECT id::text, description, quantity::text FROM app_invoice_lines WHERE invoice_id = $1 ORDER BY position, id',
      [id],
    );
    return res.rows.map((r) => ({ id: r.id, description: r.description ?? '', quantity: Number(r.quantity) }));
  }
  /** Every invoice's id. */
  async invoiceIds(): Promise<string[]> {
    const res = await this.pool.query<{ id: string }>('SELECT id::text FROM app_invoices ORDER BY id');
    return res.rows.map((r) => r.id);
  }
  async #barrier(): Promise<void> {
    while (!this.#barrierPassed) {
      const res = await this.pool.query<{ n: number }>("SELECT count(DISTINCT pid)::int AS n FROM app_writes WHERE entity = 'contacts' AND kind = 'create'");
      if ((res.rows[0]?.n ?? 0) >= this.#createBarrierWriters) this.#barrierPassed = true;
      else await new Promise((r) => setTimeout(r, 20));
    }
  }
  async updateContact(id: string, c: Contact): Promise<boolean> {
    const res = await this.pool.query(
      `WITH up AS (UPDATE app_contacts SET first_name = $2, last_name = $3, job_title = $4, company_id = $5, updated_at = now()
         WHERE id = $1 RETURNING id::text AS id)
       INSERT INTO app_writes (entity, local_id, kind, pid) SELECT 'contacts', id, 'update', $6 FROM up`,
      [id, c.firstName, c.lastName, c.jobTitle, c.companyId, process.pid],
    );
    if (this.#updateDelayMs > 0) await new Promise((r) => setTimeout(r, this.#updateDelayMs));
    return (res.rowCount ?? 0) > 0;
  }
  async contact(id: string): Promise<Contact | null> {
    const res = await this.pool.query<{ id: string; first_name: string; last_name: string; job_title: string | null; company_id: string | null; updated_at: Date }>(
      'SELECT id::text, first_name, last_name, job_title, company_id, updated_at FROM app_contacts WHERE id = $1',
      [id],
    );
    const r = res.rows[0];
    return r ? { id: r.id, firstName: r.first_name, lastName: r.last_name, jobTitle: r.job_title, companyId: r.company_id, updatedAt: r.updated_at } : null;
  }
  async count(table: 'app_companies' | 'app_contacts'): Promise<number> {
    const res = await this.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`);
    return Number(res.rows[0]?.n ?? 0);
  }
  /**
   * Creates of one local id logged more than once. The app's idempotency (`idem_key`) keeps a
   * repeated create of a record from inserting a row, so this stays 0 even when the engine
   * calls `create` twice for one record: `repeatedCreates` counts those calls.
   */
  async duplicateCreates(): Promise<number> {
    const res = await this.pool.query<{ n: string }>(
      "SELECT count(*)::text AS n FROM (SELECT entity, local_id FROM app_writes WHERE kind = 'create' GROUP BY entity, local_id HAVING count(*) > 1) d",
    );
    return Number(res.rows[0]?.n ?? 0);
  }
  /**
   * Creates the engine asked for again for a record the app had created already (answered from
   * `idem_key`, nothing inserted): the same record applied twice. Legitimate only after a crash
   * between the app's commit and the job's completion.
   */
  async repeatedCreates(): Promise<number> {
    const res = await this.pool.query<{ n: string }>('SELECT count(*)::text AS n FROM app_create_repeats');
    return Number(res.rows[0]?.n ?? 0);
  }
  async writeCount(kind?: 'create' | 'update'): Promise<number> {
    const res = await this.pool.query<{ n: string }>(
      kind ? 'SELECT count(*)::text AS n FROM app_writes WHERE kind = $1' : 'SELECT count(*)::text AS n FROM app_writes',
      kind ? [kind] : [],
    );
    return Number(res.rows[0]?.n ?? 0);
  }
  async writerPids(): Promise<number[]> {
    const res = await this.pool.query<{ pid: number }>('SELECT DISTINCT pid FROM app_writes');
    return res.rows.map((r) => r.pid);
  }
  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** Any connector `createApp` accepts. */
export type AnyConnector = ReturnType<typeof defineConnector>;

type Person = Record<string, unknown> & { first_name?: string | null; last_name?: string | null; job_title?: string | null; organization_id?: unknown };

type ConnecInvoice = Record<string, unknown> & { transaction_number?: string | null; lines?: { id?: unknown; description?: string | null; quantity?: number | null }[] | null };

/** Invoices with lines (sub-records) over the app's PostgreSQL tables: `local.update` returns the line ids unless `updateReturnsNothing`. */
export function invoiceEntity(db: AppDb, options: { updateReturnsNothing?: boolean } = {}) {
  const toLocal = (inv: ConnecInvoice): Invoice => ({
    number: inv.transaction_number ?? '',
    // Each line's `id` is the app's (a string) or null for a line it has not created.
    lines: (inv.lines ?? []).map((l) => ({ id: typeof l.id === 'string' ? l.id : null, description: l.description ?? '', quantity: l.quantity ?? 0 })),
  });
  return defineEntity({
    name: 'invoices',
    connec: 'invoices',
    direction: 'inbound',
    subRecords: ['lines'],
    toLocal,
    local: {
      create: async (data, ctx) => {
        const { id, lineIds } = await db.createInvoice(ctx.idempotencyKey, data);
        return { id, subIds: { lines: lineIds } };
      },
      update: async (id, data) => {
        const lineIds = await db.updateInvoice(id, data);
        if (lineIds === null) return { gone: true };
        return options.updateReturnsNothing ? undefined : { subIds: { lines: lineIds } };
      },
    },
  });
}

/** With `invoices`, the connector also has the invoices entity (`invoiceEntity`). */
export function appConnector(db: AppDb, options: { invoices?: boolean } = {}) {
  const companies = defineEntity({
    name: 'companies',
    connec: 'organizations',
    direction: 'inbound',
    toLocal: (org: Record<string, unknown>) => ({ name: typeof org.name === 'string' ? org.name : '' }),
    local: {
      create: async (data, ctx) => ({ id: await db.createCompany(ctx.idempotencyKey, data.name) }),
      update: async (id, data) => ((await db.updateCompany(id, data.name)) ? undefined : { gone: true }),
    },
  });
  const contacts = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'both',
    references: { organization_id: 'companies' },
    toLocal: (p: Person): Contact => ({
      firstName: p.first_name ?? '',
      lastName: p.last_name ?? '',
      jobTitle: p.job_title ?? null,
      companyId: typeof p.organization_id === 'string' ? p.organization_id : null,
      updatedAt: new Date(),
    }),
    toConnec: (c: Contact) => ({ first_name: c.firstName, last_name: c.lastName, job_title: c.jobTitle, organization_id: c.companyId }),
    localId: (c: Contact) => c.id ?? '',
    local: {
      create: async (data, ctx) => ({ id: await db.createContact(ctx.idempotencyKey, data) }),
      update: async (id, data) => ((await db.updateContact(id, data)) ? undefined : { gone: true }),
      // Read by a retried job only (no `localUpdatedAt`: no conflict policy): whether the app
      // holds the version a killed attempt may have written (worker-kill-push-race).
      get: async (id) => db.contact(id),
    },
  });
  if (options.invoices) return defineConnector({ entities: [contacts, companies, invoiceEntity(db)] });
  return defineConnector({ entities: [contacts, companies] });
}

export interface StorageHandle {
  storage: StorageAdapter;
  close(): Promise<void>;
}

export async function postgresStorage(databaseUrl: string): Promise<StorageHandle> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
  pool.on('error', () => {});
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  await migrate({ prisma });
  return {
    storage: prismaAdapter(prisma),
    async close() {
      await prisma.$disconnect();
      await pool.end().catch(() => {});
    },
  };
}

/** adapter-prisma on a SQLite file (WAL), the embedded default. */
export async function sqliteStorage(): Promise<StorageHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'mno-sync-e2e-'));
  const path = join(dir, 'storage.db');
  const raw = new Database(path);
  raw.pragma('journal_mode = WAL');
  raw.close();
  const prisma = new SqlitePrismaClient({ adapter: new PrismaBetterSqlite3({ url: `file:${path}`, timeout: 5000 }) });
  await migrate({ prisma });
  return {
    storage: prismaAdapter(prisma),
    async close() {
      await prisma.$disconnect();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** adapter-mongo on a FerretDB process of its own (MongoDB wire protocol, SQLite handler). */
export async function mongoStorage(): Promise<StorageHandle> {
  const binary = findFerretDb();
  if (!binary) throw new Error('ferretdb binary not found (FERRETDB_BIN, /usr/local/bin/ferretdb or PATH)');
  const server = await FerretDbServer.launch(binary);
  const storage = mongoAdapter({ url: server.url, dbName: 'mno_sync_e2e' });
  await storage.ensureIndexes();
  return {
    storage,
    async close() {
      await storage.close();
      await server.destroy();
    },
  };
}

export { findFerretDb };

/** `connector` replaces the companies/contacts connector over `db` (the scenario tests bring their own). */
export function createApp(args: { tenants: TenantRegistry; storage: StorageAdapter; db: AppDb; sync?: SyncModuleConfig; connector?: AnyConnector }): Maestrano {
  let companies = 0;
  let users = 0;
  return createMaestrano({
    tenants: args.tenants,
    storage: args.storage,
    provisioning: {
      createCompany: () => ({ id: `company-${++companies}` }),
      createUser: () => ({ id: `user-${++users}` }),
    },
    onLogin: ({ user, company }) => Response.json({ userId: user.id, companyId: company.id }),
    sso: { allowIdpInitiated: true },
    connector: args.connector ?? appConnector(args.db),
    sync: { pageSize: 50, parkRetryMs: 200, ...args.sync },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
}

export { memoryAdapter };
