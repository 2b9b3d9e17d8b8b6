/**
 * The CRM as a standalone server, configured from the environment:
 *   MAESTRANO_CONFIG  path of the dev-platform marketplaces document (required)
 *   DATABASE_URL      PostgreSQL URL (default: SQLite under CRM_DATA_DIR)
 *   CRM_DATA_DIR      folder of the SQLite file (default: examples/crm/.data)
 *   PORT              default 3000
 *   CRM_WORKER=off    do not run the worker in this process (run `npm run worker` instead)
 *   CRM_SECURE_COOKIES=on  mark the session cookie Secure (behind HTTPS)
 */
import { startCrm } from './server.js';

const configFile = process.env.MAESTRANO_CONFIG;
if (!configFile) {
  console.error('MAESTRANO_CONFIG must name the marketplaces document (or run `npm start` at the repository root).');
  process.exit(1);
}
const crm = await startCrm({
  configFile,
  databaseUrl: process.env.DATABASE_URL,
  dataDir: process.env.CRM_DATA_DIR || undefined,
  port: Number(process.env.PORT ?? 3000),
  worker: process.env.CRM_WORKER !== 'off',
  secureCookies: process.env.CRM_SECURE_COOKIES === 'on',
});
console.log(`Acme CRM listening on ${crm.url} (database: ${crm.db.location})`);
const stop = async () => {
  await crm.stop();
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
