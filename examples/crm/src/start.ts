/**
 * The quick start (`npm start` at the repository root): a seeded local Maestrano platform
 * (the sandbox) and Acme CRM wired to it, on the embedded SQLite database. State is kept in
 * examples/crm/.data so a restart continues where it stopped.
 *
 *   SANDBOX_PORT (4000), PORT (3000), SEED (1000 records), DATABASE_URL (optional PostgreSQL),
 *   MAESTRANO_CONFIG (use your own marketplaces document instead of the sandbox's).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataFileLockedError, startSandbox } from '@org/maestrano-sandbox';
import { startCrm } from './server.js';

const dataDir = process.env.CRM_DATA_DIR ?? join(dirname(fileURLToPath(import.meta.url)), '..', '.data');
mkdirSync(dataDir, { recursive: true });
const sandboxPort = Number(process.env.SANDBOX_PORT ?? 4000);
const crmPort = Number(process.env.PORT ?? 3000);
const appUrl = `http://localhost:${crmPort}`;

const sandbox = await startSandbox({
  port: sandboxPort,
  host: '127.0.0.1',
  // Same site as the CRM (localhost), so the browser keeps the SSO request cookie on the auto-post.
  publicUrl: `http://localhost:${sandboxPort}`,
  appUrl,
  seed: Number(process.env.SEED ?? 1000),
  dataFile: join(dataDir, 'sandbox.sqlite'),
}).catch((error: unknown) => {
  // The usual cause: the quick start is already running (it holds the data file and the ports).
  if (error instanceof DataFileLockedError) {
    console.error(`${error.message}.\nIs \`npm start\` already running? Stop it (Ctrl-C) first, or set CRM_DATA_DIR to another folder.`);
    process.exit(1);
  }
  throw error;
});

let configFile = process.env.MAESTRANO_CONFIG;
if (!configFile) {
  const { apiKey, apiSecret } = sandbox.credentials.environment;
  const res = await fetch(sandbox.marketplacesUrl, {
    headers: { authorization: `Basic ${Buffer.from(`${apiKey}:${apiSecret}`).toString('base64')}`, accept: 'application/json' },
  });
  if (!res.ok) throw new Error(`the sandbox's developer platform answered ${res.status}`);
  configFile = join(dataDir, 'maestrano.json');
  writeFileSync(configFile, await res.text(), { mode: 0o600 });
}

const crm = await startCrm({ port: crmPort, configFile, databaseUrl: process.env.DATABASE_URL, dataDir });
const [user] = await sandbox.admin.listUsers();
const [group] = await sandbox.admin.listGroups();

console.log(`
  Maestrano sandbox  ${sandbox.url}    (IdP, Account API, Connec!, web UI)
  Acme CRM           ${crm.url}    (database: ${crm.db.location})

  What to click:
    1. Open ${sandbox.url}/ui/groups and press "Launch app" on a group${group ? ` (e.g. ${group.name})` : ''}.
    2. Pick a user on the sandbox's sign-in page${user ? ` (e.g. ${user.name} ${user.surname})` : ''}: you land in Acme CRM,
       signed in; the contacts and accounts lists fill as the worker imports them from Connec!.
    3. Edit a contact in the CRM and see it in the sandbox's Connec! browser; edit a record
       in the sandbox and see the CRM update. "Cancel group" in the sandbox ends access.

  Marketplaces document: ${configFile}
  Ctrl-C to stop.
`);

const stop = async () => {
  await crm.stop();
  await sandbox.stop();
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
