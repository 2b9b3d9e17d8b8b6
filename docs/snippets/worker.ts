/**
 * A worker process (scale-out): run any number of them next to the web processes, against the
 * same databases (the SDK's storage and the app's tables). The shape only: `createDb()` is in
 * memory; examples/crm/src/worker.ts is a complete one.
 *   MAESTRANO_CONFIG=maestrano.json MONGODB_URL=mongodb://… node --import tsx worker.ts
 */
// #region worker
import { tenantsFromFile, type WorkerEvent } from '@org/maestrano-sdk';
import { createDb } from './db.js';
import { createAppMaestrano } from './maestrano.js';
import { mongoStorage } from './storage.js';

// The web processes' configuration and the SAME databases: the SDK's storage (jobs are leased
// through it) and your app's tables (the jobs' hooks write there). `createDb()` stands for the
// latter here, but it is in memory: give both processes your real database instead.
const mno = createAppMaestrano({
  db: createDb(),
  tenants: await tenantsFromFile(process.env.MAESTRANO_CONFIG ?? 'maestrano.json'),
  storage: await mongoStorage(process.env.MONGODB_URL ?? 'mongodb://127.0.0.1:27017/app'),
});

const controller = new AbortController();
process.once('SIGTERM', () => controller.abort()); // stop claiming; in-flight jobs get 10 s to finish
process.once('SIGINT', () => controller.abort());

const stats = await mno.worker.run({
  signal: controller.signal,
  concurrency: 8, // handler calls at once in this process (a batch of up to 100 records is one)
  leaseMs: 30_000, // a crashed worker's jobs are redelivered after this
  onEvent: (event: WorkerEvent) => {
    if (event.type === 'failed') console.warn(`${event.job.type} failed (${event.outcome}): ${event.error.message}`);
  },
});
console.log('worker stopped', stats);
await mno.runtime.storage.close();
// #endregion worker
