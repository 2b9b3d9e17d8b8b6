import type { TestProject } from 'vitest/node';
import { FerretDbServer, findFerretDb } from './ferretdb.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Connection string of the test server, or null when none is available. */
    mongoUrl: string | null;
    /** `mongo-mongodb` (MONGODB_URL given), `mongo-ferretdb` (started here). */
    mongoBackend: string;
    /** Why there is no server (printed by the tests that skip). */
    mongoUnavailable: string | null;
    /** Path of the ferretdb binary (for tests that start their own instance), or null. */
    ferretdbBinary: string | null;
  }
}

/**
 * Starts FerretDB 1.24 (SQLite handler, loopback, temporary data) for the adapter-mongo
 * project, or uses MONGODB_URL / MAESTRANO_TEST_MONGO_URL when set. Without the ferretdb
 * binary, CI fails here; a local run skips with a printed reason.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env['MONGODB_URL'] ?? process.env['MAESTRANO_TEST_MONGO_URL'];
  const binary = findFerretDb();
  project.provide('ferretdbBinary', binary);
  if (external) {
    project.provide('mongoUrl', external);
    project.provide('mongoBackend', 'mongo-mongodb');
    project.provide('mongoUnavailable', null);
    return async () => undefined;
  }
  project.provide('mongoBackend', 'mongo-ferretdb');
  if (!binary) {
    const reason = 'ferretdb binary not found (run scripts/install-ferretdb.sh, or set MONGODB_URL)';
    if (process.env['CI']) throw new Error(`adapter-mongo tests: ${reason}; CI must run them`);
    console.warn(`[adapter-mongo] skipping MongoDB tests: ${reason}`);
    project.provide('mongoUrl', null);
    project.provide('mongoUnavailable', reason);
    return async () => undefined;
  }
  const server = await FerretDbServer.launch(binary);
  project.provide('mongoUrl', server.url);
  project.provide('mongoUnavailable', null);
  return () => server.destroy();
}
