/**
 * Throwaway PostgreSQL databases (unique names, dropped after), the Prisma storage adapter on
 * them, a state fingerprint of every SDK table (the second channel: "no state change" is
 * checked on stored rows, not on what the SDK answers), and a cuttable TCP proxy so one
 * test's database can "go down" without touching the shared server.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket, connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { migrate, prismaAdapter } from '@org/maestrano-adapter-prisma';
import type { StorageAdapter } from '@org/maestrano-sdk';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../../../packages/adapter-prisma/test/generated/postgresql/client.js';
import { adminQuery, PG_SERVER_URL } from '../../e2e/pg-server.js';

export { pgUnavailableReason } from '../../e2e/pg-server.js';



export interface TestDatabase {
  name: string;
  url: string;
  /** `url` with another host:port (e.g. a proxy). */
  urlVia(port: number): string;
  pool: pg.Pool;
  sql<T extends Record<string, unknown> = Record<string, unknown>>(query: string, params?: unknown[]): Promise<T[]>;
  /** Hash per SDK table (`maestrano_*`) of its rows; equal fingerprints = unchanged state. */
  fingerprint(): Promise<Record<string, string>>;
  drop(): Promise<void>;
}

export async function createDatabase(prefix: string): Promise<TestDatabase> {
  const name = `mno_rel_${prefix}_${randomBytes(4).toString('hex')}`;
  await adminQuery(`CREATE DATABASE "${name}"`);
  const url = new URL(PG_SERVER_URL);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 4 });
  // pool.end() resolves before its clients' sockets have closed, so the DROP … WITH (FORCE)
  // below can terminate one of them; without a listener the pool re-throws that as an
  // unhandled error (seen once in the charges test's teardown).
  pool.on('error', () => {});
  const sql = async <T extends Record<string, unknown>>(query: string, params: unknown[] = []) => (await pool.query<T>(query, params)).rows;
  return {
    name,
    url: url.toString(),
    urlVia(port) {
      const via = new URL(url);
      via.host = `127.0.0.1:${port}`;
      return via.toString();
    },
    pool,
    sql,
    async fingerprint() {
      const tables = await sql<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'maestrano%' ORDER BY 1");
      const out: Record<string, string> = {};
      for (const { t } of tables) {
        const rows = await sql<{ r: string }>(`SELECT row_to_json(x)::text AS r FROM "${t}" x`);
        out[t] = createHash('sha256').update(rows.map((r) => r.r).sort().join('\n')).digest('hex').slice(0, 16);
      }
      return out;
    },
    async drop() {
      await pool.end();
      await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}

export interface PrismaStorage {
  storage: StorageAdapter;
  close(): Promise<void>;
}

/**
 * The Prisma adapter on `url` (migrated). `max` bounds the pool; `operationTimeoutMs` is the
 * adapter's bound on one operation (its default when unset), the wait for a pooled connection included.
 */
export async function prismaStorage(url: string, options: { max?: number; migrateFirst?: boolean; operationTimeoutMs?: number } = {}): Promise<PrismaStorage> {
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max: options.max ?? 10 }) });
  if (options.migrateFirst !== false) await migrate({ prisma });
  const adapterOptions = options.operationTimeoutMs === undefined ? {} : { operationTimeoutMs: options.operationTimeoutMs };
  return { storage: prismaAdapter(prisma, adapterOptions), close: () => prisma.$disconnect() };
}

/**
 * A TCP proxy to PostgreSQL that can be cut (every open connection reset, new ones refused)
 * and restored: "the database went down" for the clients behind it only.
 */
export interface CutProxy {
  port: number;
  cut(): void;
  restore(): void;
  readonly cuts: number;
  close(): Promise<void>;
}

export async function startCutProxy(target = new URL(PG_SERVER_URL)): Promise<CutProxy> {
  const sockets = new Set<Socket>();
  let down = false;
  let cuts = 0;
  const server: Server = createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = connect(Number(target.port || 5432), target.hostname);
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cut() {
      down = true;
      cuts++;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    restore() {
      down = false;
    },
    get cuts() {
      return cuts;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
