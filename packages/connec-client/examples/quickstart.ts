/**
 * Quick start: list/iterate, create, batch and notification parsing.
 *
 *   node --conditions=@org/source --import tsx packages/connec-client/examples/quickstart.ts
 *
 * Against a real Connec! set CONNEC_HOST, CONNEC_API_ID, CONNEC_API_KEY and CONNEC_GROUP_ID
 * (this works from the installed package too: `node examples/quickstart.ts` needs a TypeScript
 * loader such as tsx). Without them, in a clone of the repository, it starts the repository's
 * loopback Connec! test server (test/server.ts, not part of the npm package) and runs against that.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  attachId,
  connecId,
  createConnecClient,
  externalId,
  isMaestranoError,
  ne,
  parseNotification,
} from '@org/connec-client';

export interface QuickstartOptions {
  host: string;
  apiId: string;
  apiKey: string;
  groupId: string;
  log?: (line: string) => void;
}

export async function quickstart({ host, apiId, apiKey, groupId, log = console.log }: QuickstartOptions) {
  const connec = createConnecClient({ host, credentials: { apiId, apiKey }, externalIds: true });
  const people = connec.group(groupId).people;
  const myApp = { provider: 'myapp', realm: 'acct-42' };

  // Create: the record comes back with its Connec! id (an id array, since externalIds is on).
  const jane = await people.create({
    first_name: 'Jane',
    last_name: 'Doe',
    email: { address: 'jane@example.com' },
    id: [{ id: 'local-1', ...myApp }],
  });
  log(`created Jane: connec id ${connecId(jane.id)}, our id ${externalId(jane.id, myApp)}`);

  // List: await for the first page (with the total), or iterate every record, one page at a time.
  const firstPage = await people.list({ top: 2 });
  log(`${firstPage.total} people, ${firstPage.data.length} on the first page`);
  const names: string[] = [];
  for await (const person of people.list({ filter: ne('status', 'ARCHIVED'), orderBy: 'created_at ASC', top: 2 })) {
    names.push(`${person.first_name} ${person.last_name}`);
  }
  log(`iterated: ${names.join(', ')}`);

  // Batch: one result per op, in order; a failed op carries its typed error.
  const results = await connec.batch([
    { method: 'post', group: groupId, collection: 'organizations', record: { name: 'Acme Pty', is_customer: true } },
    { method: 'post', group: groupId, collection: 'people', record: { first_name: 'Bad', email: { address: 'nope' } } },
    {
      method: 'put',
      group: groupId,
      collection: 'people',
      id: jane.id,
      record: { job_title: 'CTO', id: attachId(undefined, 'local-1', myApp) },
    },
  ]);
  const batch = results.map((r) => (r.ok ? `${r.status} ok` : `${r.status ?? '-'} ${r.error.code}`));
  log(`batch: ${batch.join(' | ')}`);

  // Notifications: what Connec! POSTs to the app; typed records grouped by group_id.
  const notification = parseNotification(
    JSON.stringify({
      Person: [{ id: jane.id, first_name: 'Janet', group_id: groupId, updated_at: '2026-01-02T00:00:00Z' }],
      Invoice: [{ id: 'inv-1', transaction_number: 'INV-1009', group_id: 'cld-other' }],
    }),
  );
  const notified = notification.groups.map((g) => {
    const changed = Object.entries(g.records).map(([collection, records]) => `${records?.length ?? 0} ${collection}`);
    return `${g.groupId}: ${changed.join(', ')}`;
  });
  log(`notification: ${notified.join('; ')}`);

  try {
    await people.retrieve('00000000-0000-0000-0000-000000000000');
  } catch (error) {
    if (isMaestranoError(error)) log(`missing record -> ${error.code}`);
  }

  return { janeId: connecId(jane.id), total: firstPage.total, names, batch, notified };
}

/** What this example uses of the repository's loopback Connec! (test/server.ts), typed here so the file stands alone. */
interface LoopbackConnecServer {
  start(options: { groups: Record<string, string> }): Promise<{
    url: string;
    apiId: string;
    apiKey: string;
    seed(groupId: string, collection: string, records: Record<string, unknown>[]): void;
    close(): Promise<void>;
  }>;
}

async function main(): Promise<void> {
  const env = process.env;
  if (env.CONNEC_HOST && env.CONNEC_API_ID && env.CONNEC_API_KEY && env.CONNEC_GROUP_ID) {
    await quickstart({ host: env.CONNEC_HOST, apiId: env.CONNEC_API_ID, apiKey: env.CONNEC_API_KEY, groupId: env.CONNEC_GROUP_ID });
    return;
  }
  // The loopback Connec! is the repository's test server: a clone has it, the npm package does not.
  const loopback = new URL('../test/server.ts', import.meta.url);
  if (!existsSync(fileURLToPath(loopback))) {
    console.error(
      'Set CONNEC_HOST, CONNEC_API_ID, CONNEC_API_KEY and CONNEC_GROUP_ID to run this example against Connec! ' +
        '(the loopback Connec! it otherwise uses is only in a clone of the repository).',
    );
    process.exitCode = 1;
    return;
  }
  const { TestConnecServer } = (await import(loopback.href)) as { TestConnecServer: LoopbackConnecServer };
  const server = await TestConnecServer.start({ groups: { 'cld-9a1b': 'org-f6zi' } });
  server.seed('cld-9a1b', 'people', [
    { first_name: 'Ada', last_name: 'Lovelace', status: 'ACTIVE' },
    { first_name: 'Alan', last_name: 'Turing', status: 'ACTIVE' },
    { first_name: 'Old', last_name: 'Record', status: 'ARCHIVED' },
  ]);
  console.log(`(no CONNEC_HOST set: using a loopback Connec! at ${server.url})`);
  try {
    await quickstart({ host: server.url, apiId: server.apiId, apiKey: server.apiKey, groupId: 'cld-9a1b' });
  } finally {
    await server.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
