// The id-map batch lookup (every import page, every worker batch) must probe the unique
// (scope, connec_id) index, not walk the scope through another index: on a 50,000-map scope
// the walk costs milliseconds per page and grows with every page imported. These tests ask
// each database how it would run the adapter's own statement.
import type { IdMapInsert } from '@org/maestrano-sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { prismaAdapter } from '../src/index.js';
import { findByConnecIdsStatement } from '../src/repositories/id-maps.js';
import { MIN_INTERVAL_MS, REFRESH_AT, StatisticsRefresher } from '../src/repositories/statistics.js';
import { render } from '../src/sql.js';
import { migratedPg, migratedSqlite, type PgDatabase, pgUnavailableReason } from './backends.js';
import type { PrismaClient as PgPrismaClient } from './generated/postgresql/client.js';

const pgUnavailable = await pgUnavailableReason();
if (pgUnavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${pgUnavailable}`);

const SCOPE = { tenant: 'acme', groupId: 'cld-9', entity: 'people' };
const maps = (n: number, from = 0): IdMapInsert[] =>
  Array.from({ length: n }, (_, i) => ({ ...SCOPE, connecId: `c-${from + i}-${'x'.repeat(30)}`, localId: `l-${from + i}` }));
const wanted = Array.from({ length: 100 }, (_, i) => `c-${i * 7}-${'x'.repeat(30)}`);

describe('id-map lookup on SQLite', () => {
  it('probes the unique connec index, not the paging index', async () => {
    const { file, prisma } = await migratedSqlite();
    try {
      const adapter = prismaAdapter(prisma);
      await adapter.idMaps.insertMany(maps(2_000));
      const { text, values } = render(findByConnecIdsStatement('sqlite', SCOPE, wanted), 'sqlite');
      const plan = await prisma.$queryRawUnsafe<{ detail: string }[]>(`EXPLAIN QUERY PLAN ${text}`, ...values);
      const details = plan.map((row) => row.detail).join(' | ');
      expect(details).toContain('maestrano_id_maps_connec_key');
      expect(details).not.toContain('maestrano_id_maps_scope_idx');
      // And the statement finds what it should.
      expect(await adapter.idMaps.findManyByConnecIds(SCOPE, wanted)).toHaveLength(100);
    } finally {
      await prisma.$disconnect();
      file.remove();
    }
  });
});

describe.skipIf(pgUnavailable !== null)(`id-map lookup on PostgreSQL${pgUnavailable ? ` (skipped: ${pgUnavailable})` : ''}`, () => {
  let db: PgDatabase;
  let prisma: PgPrismaClient;
  beforeAll(async () => {
    ({ db, prisma } = await migratedPg());
  });
  afterAll(async () => {
    await prisma?.$disconnect();
    await db?.drop();
  });

  const lastAnalyze = async () => {
    const [row] = await prisma.$queryRawUnsafe<{ at: Date | null }[]>(
      "SELECT last_analyze AS at FROM pg_stat_user_tables WHERE relname = 'maestrano_id_maps'",
    );
    return row?.at ?? null;
  };

  it('refreshes the statistics once a scope crosses 1,000 maps, and then probes the unique index', async () => {
    const adapter = prismaAdapter(prisma);
    await adapter.idMaps.insertMany(maps(900));
    await adapter.close();
    expect(await lastAnalyze()).toBeNull();
    await adapter.idMaps.insertMany(maps(300, 900));
    await adapter.close(); // waits for the background ANALYZE
    // The statistics collector reports with a short delay.
    let analyzed: Date | null = null;
    for (let i = 0; i < 50 && analyzed === null; i++) {
      analyzed = await lastAnalyze();
      if (analyzed === null) await new Promise((r) => setTimeout(r, 100));
    }
    expect(analyzed).not.toBeNull();
    // The scope keeps growing after the refresh (the next one is at 10,000): PostgreSQL
    // scales the row estimate with the table's size, and keeps probing.
    await adapter.idMaps.insertMany(maps(4_000, 1_200));
    const few = wanted.slice(0, 20);
    const { text, values } = render(findByConnecIdsStatement('postgresql', SCOPE, few), 'postgresql');
    const [row] = await prisma.$queryRawUnsafe<{ 'QUERY PLAN': unknown }[]>(`EXPLAIN (FORMAT JSON) ${text}`, ...values);
    const plan = JSON.stringify(row?.['QUERY PLAN']);
    expect(plan).toContain('maestrano_id_maps_connec_key');
    expect(plan).not.toContain('maestrano_id_maps_scope_idx');
    expect(await adapter.idMaps.findManyByConnecIds(SCOPE, few)).toHaveLength(20);
  });
});

describe('StatisticsRefresher', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const fakeDb = () => {
    const statements: string[] = [];
    const pending: (() => void)[] = [];
    const db = {
      provider: 'postgresql' as const,
      async execute(_op: string, query: Parameters<typeof render>[0]) {
        statements.push(render(query, 'postgresql').text);
        await new Promise<void>((resolve) => pending.push(resolve));
        return 0;
      },
    };
    return { db, statements, finish: () => pending.shift()?.() };
  };
  const tick = () => vi.advanceTimersByTimeAsync(0);

  it('refreshes when a scope crosses a threshold, one at a time and at most one every MIN_INTERVAL_MS; crossings meanwhile share one', async () => {
    vi.useFakeTimers();
    const { db, statements, finish } = fakeDb();
    const refresher = new StatisticsRefresher(db as never, true);
    refresher.noteInserted('a', (REFRESH_AT[0] as number) - 1);
    expect(statements).toEqual([]);
    refresher.noteInserted('a', 1); // crosses 1,000: runs at once
    expect(statements).toHaveLength(1);
    expect(statements[0]).toMatch(/^ANALYZE maestrano_id_maps \(tenant, group_id, entity, connec_id, local_id\)$/);
    // While it runs, two more scopes cross (one of them two thresholds at once): one refresh more, later.
    refresher.noteInserted('b', 20_000);
    refresher.noteInserted('c', 1_000);
    refresher.noteInserted('a', 5); // no crossing
    finish();
    await tick();
    expect(statements).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(MIN_INTERVAL_MS - 1);
    expect(statements).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(statements).toHaveLength(2);
    finish();
    await refresher.settled();
    expect(refresher.refreshes).toBe(2);
    // Long after the last one, a crossing runs at once again.
    await vi.advanceTimersByTimeAsync(MIN_INTERVAL_MS);
    refresher.noteInserted('d', 1_000);
    expect(statements).toHaveLength(3);
    finish();
    await refresher.settled();
    expect(refresher.refreshes).toBe(3);
  });

  it('settled() drops a refresh still waiting for its turn, and nothing runs after it', async () => {
    vi.useFakeTimers();
    const { db, statements, finish } = fakeDb();
    const refresher = new StatisticsRefresher(db as never, true);
    refresher.noteInserted('a', 1_000);
    finish();
    await tick();
    refresher.noteInserted('b', 1_000); // within the interval: waits
    await refresher.settled();
    await vi.advanceTimersByTimeAsync(MIN_INTERVAL_MS * 2);
    expect(statements).toHaveLength(1);
  });

  it('never refreshes when disabled (SQLite, or refreshStatistics: false)', () => {
    const off = fakeDb();
    const disabled = new StatisticsRefresher(off.db as never, false);
    disabled.noteInserted('a', 50_000);
    expect(off.statements).toEqual([]);
  });
});
