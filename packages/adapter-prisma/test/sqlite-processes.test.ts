// SQLite shared by several OS processes, as the README promises: a "web process" (this test)
// enqueues jobs through its own PrismaClient while three worker processes, each running the
// SDK worker over its own client on the same file, claim and run them. Every job must be
// handled exactly once, jobs sharing an orderingKey one at a time in enqueue order.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JobInput, StorageAdapter } from '@org/maestrano-sdk';
import { afterAll, describe, expect, it } from 'vitest';
import { prismaAdapter } from '../src/index.js';
import { migratedSqlite, type SqliteFile } from './backends.js';

const here = dirname(fileURLToPath(import.meta.url));
const CHILD = join(here, 'fixtures/sqlite-worker-child.ts');
const ROOT = join(here, '../../..');

const WORKERS = 3;
const CONCURRENCY = 4;
const KEYS = Array.from({ length: 10 }, (_, i) => `key-${i}`);

interface Handling {
  pid: number;
  worker: string;
  jobId: string;
  key: string | null;
  attempts: number;
  start: bigint;
  end: bigint;
}

interface Child {
  name: string;
  process: ChildProcess;
  results: string;
  log: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  ready: Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function readLines<T>(path: string): T[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as T);
}

describe('prisma-sqlite: one database file shared by a web process and worker processes', () => {
  const children: Child[] = [];
  let file: SqliteFile | undefined;
  let disconnect: (() => Promise<void>) | undefined;

  afterAll(async () => {
    for (const child of children) {
      if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
    }
    await Promise.all(children.map((child) => child.exited));
    await disconnect?.();
    file?.remove();
  });

  function startWorker(dir: string, dbPath: string, name: string): Child {
    const results = join(dir, `${name}.jsonl`);
    const log = join(dir, `${name}.log.jsonl`);
    const proc = spawn(process.execPath, ['--conditions=@org/source', '--import', 'tsx', CHILD, dbPath, results, log, name, String(CONCURRENCY)], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const child: Child = {
      name,
      process: proc,
      results,
      log,
      stderr: '',
      exited: new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal }))),
      ready: new Promise((resolve, reject) => {
        let out = '';
        proc.stdout?.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('ready\n')) resolve();
        });
        proc.once('exit', (code) => reject(new Error(`${name} exited (${code}) before it was ready: ${child.stderr}`)));
      }),
    };
    proc.stderr?.on('data', (chunk: Buffer) => {
      child.stderr += chunk.toString();
    });
    children.push(child);
    return child;
  }

  it('three worker processes and the enqueuing web process: each job handled once, per orderingKey one at a time in enqueue order', async () => {
    const started = Date.now();
    const migrated = await migratedSqlite();
    file = migrated.file;
    const prisma = migrated.prisma;
    disconnect = () => prisma.$disconnect();
    const web: StorageAdapter = prismaAdapter(prisma);
    const dir = dirname(file.path);

    for (let i = 0; i < WORKERS; i++) startWorker(dir, file.path, `w${i}`);
    await Promise.all(children.map((child) => child.ready));

    // Every job is enqueued while the workers already poll: the ids of one key ascend in
    // enqueue order (one enqueuer), so the per-key order to expect is the id order.
    const enqueued: string[] = [];
    const byKey = new Map<string, string[]>(KEYS.map((key) => [key, []]));
    const record = (input: JobInput, id: string) => {
      enqueued.push(id);
      if (input.orderingKey) byKey.get(input.orderingKey)?.push(id);
    };
    // 300 in batches of 25 (enqueueMany): 120 keyed, each key in runs of 3 consecutive jobs (so
    // without the ordering rule one claim would take several of a key), 3 without a key after
    // every 2 keyed.
    const initial: JobInput[] = [];
    const keyRuns = Array.from({ length: 4 }, () => KEYS.flatMap((key) => [key, key, key])).flat();
    keyRuns.forEach((key, i) => {
      initial.push({ type: 'stress', payload: { i }, orderingKey: key });
      if (i % 2 === 1) for (let f = 0; f < 3; f++) initial.push({ type: 'stress', payload: { i, f } });
    });
    for (let i = 0; i < initial.length; i += 25) {
      const batch = initial.slice(i, i + 25);
      const results = await web.jobs.enqueueMany(batch);
      for (const [k, result] of results.entries()) record(batch[k]!, result.id);
    }
    // 100 more one by one while the workers run: 4 keyed and 6 without per round.
    for (let round = 0; round < 10; round++) {
      for (let j = 0; j < 10; j++) {
        const input: JobInput = { type: 'stress', payload: { late: round, j }, ...(j < 4 ? { orderingKey: KEYS[(round * 4 + j) % KEYS.length] } : {}) };
        record(input, (await web.jobs.enqueue(input)).id);
      }
      await sleep(20);
    }
    const total = enqueued.length;
    expect(total).toBe(400);
    expect(new Set(enqueued).size).toBe(total);
    const keyed = [...byKey.values()].reduce((n, ids) => n + ids.length, 0);

    // Wait until the database shows every job settled (or a worker dies, or 90 s pass).
    const deadline = Date.now() + 90_000;
    let counts = await web.jobs.counts({ type: 'stress' });
    while (counts.done + counts.dead < total && Date.now() < deadline) {
      const dead = children.find((child) => child.process.exitCode !== null || child.process.signalCode !== null);
      if (dead) throw new Error(`${dead.name} exited early (${dead.process.exitCode ?? dead.process.signalCode}): ${dead.stderr}`);
      await sleep(50);
      counts = await web.jobs.counts({ type: 'stress' });
    }
    const settledMs = Date.now() - started;

    for (const child of children) child.process.kill('SIGTERM');
    const exits = await Promise.all(
      children.map((child) =>
        Promise.race([child.exited, sleep(20_000).then(() => ({ code: null, signal: 'timeout' as const }))]),
      ),
    );

    const handlings: Handling[] = children.flatMap((child) =>
      readLines<Omit<Handling, 'start' | 'end'> & { start: string; end: string }>(child.results).map((line) => ({
        ...line,
        start: BigInt(line.start),
        end: BigInt(line.end),
      })),
    );
    const logs = children.flatMap((child) => readLines<{ pid: number; level: string; message?: string; event?: string; error?: string }>(child.log));
    const stats = children.map((child) =>
      existsSync(`${child.results}.stats.json`) ? JSON.parse(readFileSync(`${child.results}.stats.json`, 'utf8')) : null,
    );
    const busy = logs.filter((entry) => /busy|locked/i.test(`${entry.message ?? ''} ${entry.error ?? ''}`));
    const perWorker = children.map((child) => `${child.name}=${handlings.filter((h) => h.worker === child.name).length}`).join(' ');
    console.log(
      `[sqlite-processes] ${total} jobs (${keyed} keyed over ${KEYS.length} keys), ${WORKERS} processes x ${CONCURRENCY}: ` +
        `handled ${handlings.length} (${perWorker}); settled after ${settledMs} ms; busy/locked log entries: ${busy.length}; ` +
        `worker log entries: ${logs.length}`,
    );
    if (logs.length > 0) console.log(logs.slice(0, 10).map((entry) => JSON.stringify(entry)).join('\n'));

    // No worker died, and each shut down cleanly on SIGTERM (stats written after run() returned).
    const stderr = children.map((child) => `${child.name}: ${child.stderr}`).join('\n');
    expect(exits.map((exit, i) => ({ name: children[i]!.name, ...exit })), stderr).toEqual(
      children.map((child) => ({ name: child.name, code: 0, signal: null })),
    );
    expect(stats.every((s) => s !== null)).toBe(true);
    // No worker saw a storage error (SQLITE_BUSY included), a lost lease or a failed attempt.
    expect(logs).toEqual([]);

    // Every enqueued job handled exactly once across the processes.
    const seen = new Map<string, Handling[]>();
    for (const h of handlings) seen.set(h.jobId, [...(seen.get(h.jobId) ?? []), h]);
    const duplicates = [...seen].filter(([, hs]) => hs.length > 1).map(([id, hs]) => `${id}: ${hs.map((h) => h.worker).join(',')}`);
    expect(duplicates).toEqual([]);
    expect([...seen.keys()].sort()).toEqual([...enqueued].sort());

    // Per orderingKey: never two handlings at once (across processes), in enqueue order.
    const overlaps: string[] = [];
    const disorder: string[] = [];
    for (const [key, ids] of byKey) {
      const runs = handlings.filter((h) => h.key === key).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
      if (runs.map((h) => h.jobId).join() !== ids.join()) disorder.push(`${key}: ran ${runs.map((h) => h.jobId).join()}, enqueued ${ids.join()}`);
      for (let i = 1; i < runs.length; i++) {
        const [prev, next] = [runs[i - 1]!, runs[i]!];
        if (next.start < prev.end) overlaps.push(`${key}: ${next.jobId}@${next.worker} started before ${prev.jobId}@${prev.worker} ended`);
      }
    }
    expect({ overlaps, disorder }).toEqual({ overlaps: [], disorder: [] });

    // The database: everything done, nothing dead, pending or running, each job claimed once.
    expect(await web.jobs.counts({ type: 'stress' })).toEqual({ pending: 0, running: 0, done: total, dead: 0 });
    const attempts = (await prisma.$queryRawUnsafe(
      `SELECT attempts, COUNT(*) AS n FROM maestrano_jobs WHERE type = 'stress' GROUP BY attempts`,
    )) as { attempts: number | bigint; n: number | bigint }[];
    expect(attempts.map((row) => ({ attempts: Number(row.attempts), n: Number(row.n) }))).toEqual([{ attempts: 1, n: total }]);

    // The load was really shared: every process handled jobs.
    for (const child of children) expect(handlings.some((h) => h.worker === child.name), `${child.name} handled no job`).toBe(true);
  }, 120_000);
});
