/** Starts the guides' example app: web server plus an in-process worker. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { type Maestrano, type StorageAdapter, tenantsFromFile } from '@org/maestrano-sdk';
import { createApp } from './app.js';
import { createDb, type Db } from './db.js';
import { createAppMaestrano } from './maestrano.js';

export interface RunningApp {
  url: string;
  mno: Maestrano;
  db: Db;
  stop(): Promise<void>;
}

// #region start
export async function startApp(options: { configFile: string; port?: number; storage?: StorageAdapter }): Promise<RunningApp> {
  const db = createDb();
  const mno = createAppMaestrano({ db, tenants: await tenantsFromFile(options.configFile), ...(options.storage ? { storage: options.storage } : {}) });
  const app = createApp(mno, db);

  const server: Server = createServer(getRequestListener(app.fetch));
  await new Promise<void>((resolve) => server.listen(options.port ?? 3000, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  // The worker runs the durable jobs: company set-up, billing, imports, notifications.
  const controller = new AbortController();
  const worker = mno.worker.run({ signal: controller.signal, pollIntervalMs: 200 });

  return {
    url: `http://127.0.0.1:${port}`,
    mno,
    db,
    async stop() {
      controller.abort();
      await worker;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await mno.runtime.storage.close();
    },
  };
}
// #endregion start
