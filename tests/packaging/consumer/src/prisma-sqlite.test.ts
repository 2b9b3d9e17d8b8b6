/**
 * adapter-prisma as installed: the integrator's client generated from the package's schema
 * fragment (see beforeAll of packaging.test.ts), the shipped SQLite migrations applied by
 * migrate() from node_modules, and the storage contract working through them.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate, migrationsDirectory, prismaAdapter } from '@org/maestrano-adapter-prisma';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { afterAll, expect, it } from 'vitest';
import { PrismaClient } from '../generated/client.js';

const dir = mkdtempSync(join(tmpdir(), 'packaging-sqlite-'));
const prisma = new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: `file:${join(dir, 'app.db')}` }) });

afterAll(async () => {
  await prisma.$disconnect();
  rmSync(dir, { recursive: true, force: true });
});

it('migrate() applies the migrations shipped in the package, once', async () => {
  const shipped = migrationsDirectory('sqlite');
  expect(shipped).toContain(join('node_modules', '@org', 'maestrano-adapter-prisma', 'prisma', 'migrations', 'sqlite'));
  const names = readdirSync(shipped, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  expect(names.length).toBeGreaterThan(0);
  expect(await migrate({ prisma })).toEqual({ applied: names, skipped: [] });
  expect(await migrate({ prisma })).toEqual({ applied: [], skipped: names });
});

it('the storage contract works on the migrated tables', async () => {
  const storage = prismaAdapter(prisma);
  const job = { type: 'packaging.check', tenant: 't', groupId: 'g', payload: { n: 1 }, dedupeKey: 'k-1' };
  const first = await storage.jobs.enqueue(job);
  expect(first.created).toBe(true);
  expect(await storage.jobs.enqueue(job)).toEqual({ id: first.id, created: false });
  const [claimed] = await storage.jobs.claim({ worker: 'w1', limit: 10, leaseMs: 60_000 });
  expect(claimed).toMatchObject({ id: first.id, type: 'packaging.check', payload: { n: 1 }, attempts: 1 });
  expect(await storage.jobs.complete(first.id, 'w1')).toBe(true);
  expect(await storage.jobs.claim({ worker: 'w1', limit: 10, leaseMs: 60_000 })).toEqual([]);
  await storage.close();
});
