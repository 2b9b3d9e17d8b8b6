/** A worker process of the notifications benchmark: runs `mno.worker.run` until SIGTERM. */
import { tenantsFromDevPlatform } from '@org/maestrano-sdk';
import { createBenchApp } from './app.js';

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} missing`);
  return v;
};
const tenants = await tenantsFromDevPlatform({ host: env('BENCH_SANDBOX_URL'), key: env('BENCH_ENV_KEY'), secret: env('BENCH_ENV_SECRET'), refreshMs: 0 });
const app = await createBenchApp(env('BENCH_DATABASE_URL'), tenants, process.env.BENCH_REALM_SUFFIX ?? '');
const controller = new AbortController();
process.on('SIGTERM', () => controller.abort());
// The SDK's defaults (4 slots, batches of up to 100 records) unless overridden.
const running = app.mno.worker.run({
  signal: controller.signal,
  ...(process.env.BENCH_WORKER_CONCURRENCY ? { concurrency: Number(process.env.BENCH_WORKER_CONCURRENCY) } : {}),
  ...(process.env.BENCH_WORKER_BATCH ? { batchSize: Number(process.env.BENCH_WORKER_BATCH) } : {}),
  pollIntervalMs: 20,
});
const cpu0 = process.cpuUsage();
process.stdout.write('worker ready\n');
await running;
const cpu = process.cpuUsage(cpu0);
process.stdout.write(`worker cpu ms ${Math.round((cpu.user + cpu.system) / 1000)}\n`);
await app.close();
process.exit(0);
