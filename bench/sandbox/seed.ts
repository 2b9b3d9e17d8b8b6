/**
 * Seeding benchmark for @org/maestrano-sandbox.
 *
 *   node --conditions=@org/source --import tsx bench/sandbox/seed.ts [records]
 *
 * Prints the wall time (and the process CPU time, which is steadier on a shared machine)
 * to seed `records` (default 100,000) Connec! records in memory and into a SQLite data
 * file, records per second, and the ratio against the 30 s budget; all figures are
 * measured in this run.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startSandbox } from '@org/maestrano-sandbox';

const records = Number(process.argv[2] ?? 100_000);
const budgetMs = 30_000;
const appUrl = 'http://127.0.0.1:9';

async function measure(label: string, dataFile?: string): Promise<number> {
  const t0 = performance.now();
  const sb = await startSandbox({ port: 0, appUrl, seed: records, ...(dataFile ? { dataFile } : {}) });
  const total = performance.now() - t0;
  const t1 = performance.now();
  const cpu0 = process.cpuUsage();
  const reseed = await sb.admin.reset({ seed: records });
  const seedOnly = performance.now() - t1;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const state = await sb.admin.state();
  await sb.stop();
  if (!reseed.seed || reseed.seed.records !== records || state.counts.records !== records) {
    throw new Error(`${label}: expected ${records} records, got ${reseed.seed?.records} / ${state.counts.records}`);
  }
  console.log(
    `${label.padEnd(22)} start+seed ${(total / 1000).toFixed(2)} s | reset+reseed ${(seedOnly / 1000).toFixed(2)} s | ` +
      `CPU ${cpuSeconds.toFixed(2)} s | ${Math.round(records / (seedOnly / 1000)).toLocaleString('en')} records/s | ${(seedOnly / budgetMs).toFixed(3)} of the 30 s budget`,
  );
  return seedOnly;
}

const dir = await mkdtemp(join(tmpdir(), 'sandbox-bench-'));
try {
  console.log(`Seeding ${records.toLocaleString('en')} Connec! records (deterministic seed), Node ${process.version}`);
  const memory = await measure('in memory');
  const sqlite = await measure('SQLite data file', join(dir, 'bench.sqlite'));
  console.log(`SQLite / memory ratio: ${(sqlite / memory).toFixed(2)}x`);
  const worst = Math.max(memory, sqlite);
  console.log(worst < budgetMs ? `OK: under the 30 s budget (${(worst / 1000).toFixed(2)} s worst case)` : `OVER BUDGET: ${(worst / 1000).toFixed(2)} s`);
  if (worst >= budgetMs) process.exitCode = 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
