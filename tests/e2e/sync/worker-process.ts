/**
 * A separate worker process for the sync end-to-end tests: the same app and connector as the
 * test process, PostgreSQL storage, `mno.worker.run({ signal, concurrency })` until SIGTERM.
 */
import { type StorageAdapter, tenantsFromDevPlatform } from '@org/maestrano-sdk';
import { AppDb, appConnector, createApp, postgresStorage } from './app.js';

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

const databaseUrl = env('SYNC_E2E_DATABASE_URL');
const db = new AppDb(databaseUrl, {
  createDelayMs: Number(process.env.SYNC_E2E_CREATE_DELAY_MS ?? '0'),
  updateDelayMs: Number(process.env.SYNC_E2E_UPDATE_DELAY_MS ?? '0'),
  createStallAfter: Number(process.env.SYNC_E2E_CREATE_STALL_AFTER ?? '0'),
  createBarrierWriters: Number(process.env.SYNC_E2E_CREATE_BARRIER_WRITERS ?? '0'),
});
const { storage: pgStorage, close } = await postgresStorage(databaseUrl);
/**
 * With SYNC_E2E_STALL_AFTER_INVOICE_MAP, an id-map write of invoices answers never once it has
 * committed: this worker then holds the link-back it owes (and the invoice's line ids) until it
 * is killed, as a crash between the two would leave it.
 */
function stallingAfterInvoiceMap(inner: StorageAdapter): StorageAdapter {
  const insertMany: StorageAdapter['idMaps']['insertMany'] = async (maps) => {
    const written = await inner.idMaps.insertMany(maps);
    if (maps.some((m) => m.entity === 'invoices')) {
      process.stdout.write('stalled after the invoice map write\n');
      await new Promise(() => {});
    }
    return written;
  };
  // Proxies whose methods stay bound to the real objects (they may keep state in private fields).
  const bound = <T extends object>(target: T, property: string | symbol): unknown => {
    const value: unknown = Reflect.get(target, property, target);
    return typeof value === 'function' ? value.bind(target) : value;
  };
  const idMaps = new Proxy(inner.idMaps, { get: (target, property) => (property === 'insertMany' ? insertMany : bound(target, property)) });
  return new Proxy(inner, { get: (target, property) => (property === 'idMaps' ? idMaps : bound(target, property)) });
}
const storage = process.env.SYNC_E2E_STALL_AFTER_INVOICE_MAP === '1' ? stallingAfterInvoiceMap(pgStorage) : pgStorage;
const tenants = await tenantsFromDevPlatform({
  host: env('SYNC_E2E_DEVPL_HOST'),
  key: env('SYNC_E2E_DEVPL_KEY'),
  secret: env('SYNC_E2E_DEVPL_SECRET'),
  refreshMs: 0,
});
// Record locks as short as the job lease (3 s unless SYNC_E2E_LEASE_MS says otherwise): a killed
// worker's locks then lapse within seconds (the default 30 s would only make the kill tests wait).
const leaseMs = Number(process.env.SYNC_E2E_LEASE_MS ?? '3000');
const mno = createApp({ tenants, storage, db, sync: { lockTtlMs: leaseMs }, ...(process.env.SYNC_E2E_INVOICES === '1' ? { connector: appConnector(db, { invoices: true }) } : {}) });
const controller = new AbortController();
process.on('SIGTERM', () => controller.abort());
// Paused workers report ready, then wait for SIGUSR2, so that several start claiming together.
// A signal listener does not keep the process alive: once the storage's idle connections close
// (pg's 10 s idle timeout), nothing else would, and a process still paused exited with 13 (a
// top-level await left unsettled), before the test's signal. A timer keeps it until the signal.
const start =
  process.env.SYNC_E2E_PAUSED === '1'
    ? new Promise<void>((resolve) => {
        const keepAlive = setInterval(() => {}, 60_000);
        process.once('SIGUSR2', () => {
          clearInterval(keepAlive);
          resolve();
        });
      })
    : Promise.resolve();
process.stdout.write(`worker ready ${process.pid}\n`);
await start;
const running = mno.worker.run({
  signal: controller.signal,
  concurrency: Number(process.env.SYNC_E2E_CONCURRENCY ?? '4'),
  ...(process.env.SYNC_E2E_BATCH_SIZE ? { batchSize: Number(process.env.SYNC_E2E_BATCH_SIZE) } : {}),
  pollIntervalMs: 20,
  leaseMs,
  backoff: { baseMs: 50, maxMs: 500 },
});
const stats = await running;
process.stdout.write(`worker stopped ${JSON.stringify(stats)}\n`);
await close();
await db.close();
