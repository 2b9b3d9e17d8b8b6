/**
 * Starts the CRM: database (migrated), Maestrano SDK, web server and, unless disabled, an
 * in-process worker. `main.ts` (env-driven CLI) and `start.ts` (quick start) both use it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger, Maestrano, WorkerStats } from '@org/maestrano-sdk';
import { getRequestListener } from '@hono/node-server';
import { createCrmApp } from './app.js';
import { type Database, openDatabase } from './db.js';
import { createCrmMaestrano } from './maestrano.js';

export interface StartCrmOptions {
  /** Port (0 = ephemeral). Default 3000. */
  port?: number;
  host?: string;
  /** The dev-platform marketplaces document (MAESTRANO_CONFIG). */
  configFile: string;
  /** PostgreSQL URL; absent = embedded SQLite. */
  databaseUrl?: string | undefined;
  dataDir?: string | undefined;
  sqliteFile?: string | undefined;
  /** Run the job worker in this process (default true). Use `npm run worker` to scale out. */
  worker?: boolean;
  workerConcurrency?: number;
  logger?: Logger;
  /** Mark the session cookie `Secure` (serve the CRM over HTTPS). Default false (the local quick start is http). */
  secureCookies?: boolean;
}

export interface RunningCrm {
  url: string;
  db: Database;
  mno: Maestrano;
  stop(): Promise<void>;
}

export async function startCrm(options: StartCrmOptions): Promise<RunningCrm> {
  const db = await openDatabase({ databaseUrl: options.databaseUrl, dataDir: options.dataDir, sqliteFile: options.sqliteFile });
  const secureCookies = options.secureCookies ?? false;
  const mno = await createCrmMaestrano({ db, configFile: options.configFile, secureCookies, ...(options.logger ? { logger: options.logger } : {}) });
  const app = createCrmApp({ db, mno, secureCookies });
  const server: Server = createServer(getRequestListener(app.fetch));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 3000, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${options.host === '0.0.0.0' ? 'localhost' : (options.host ?? 'localhost')}:${port}`;

  const controller = new AbortController();
  let workerDone: Promise<WorkerStats> | null = null;
  if (options.worker ?? true) {
    workerDone = mno.worker.run({ signal: controller.signal, concurrency: options.workerConcurrency ?? 4, pollIntervalMs: 200 });
  }

  return {
    url,
    db,
    mno,
    async stop() {
      controller.abort();
      await workerDone;
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await mno.runtime.storage.close();
      await db.close();
    },
  };
}
