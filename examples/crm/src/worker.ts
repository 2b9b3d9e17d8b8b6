/**
 * A worker process for scale-out: run as many as needed against one PostgreSQL database
 * (or the SQLite file on one machine). Jobs are leased, so no job runs twice at once.
 *   MAESTRANO_CONFIG=… DATABASE_URL=… npm run worker -w @org/example-crm
 * CRM_WORKER_CONCURRENCY (default 4) is how many jobs this process runs at once; CRM_DATA_DIR
 * is the folder of the SQLite file (default examples/crm/.data), as for the web process.
 */
import { openDatabase } from './db.js';
import { createCrmMaestrano } from './maestrano.js';
import { workerConcurrencyFromEnv } from './worker-env.js';

const configFile = process.env.MAESTRANO_CONFIG;
if (!configFile) {
  console.error('MAESTRANO_CONFIG must name the marketplaces document.');
  process.exit(1);
}
let concurrency: number;
try {
  concurrency = workerConcurrencyFromEnv(process.env.CRM_WORKER_CONCURRENCY);
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}
// The same SQLite file as the web process: `CRM_DATA_DIR` as `npm start` and `src/main.ts` read it.
const db = await openDatabase({ databaseUrl: process.env.DATABASE_URL, dataDir: process.env.CRM_DATA_DIR || undefined });
const mno = await createCrmMaestrano({ db, configFile });
const controller = new AbortController();
process.once('SIGINT', () => controller.abort());
process.once('SIGTERM', () => controller.abort());
console.log(`Acme CRM worker started (database: ${db.location}); Ctrl-C to stop`);
const stats = await mno.worker.run({ signal: controller.signal, concurrency });
console.log(`worker stopped: ${JSON.stringify(stats)}`);
await db.close();
