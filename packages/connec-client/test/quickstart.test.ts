import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { quickstart } from '../examples/quickstart.js';
import { GROUP, type Harness, startHarness } from './helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.server.close();
});

describe('README quick start (examples/quickstart.ts)', () => {
  it('runs against the loopback server: create, list/iterate, batch, notifications', async () => {
    h = await startHarness();
    h.server.seed(GROUP, 'people', [
      { first_name: 'Ada', last_name: 'Lovelace', status: 'ACTIVE' },
      { first_name: 'Old', last_name: 'Record', status: 'ARCHIVED' },
      { first_name: 'Alan', last_name: 'Turing', status: 'ACTIVE' },
    ]);
    const lines: string[] = [];
    const out = await quickstart({
      host: h.server.url,
      apiId: h.server.apiId,
      apiKey: h.server.apiKey,
      groupId: GROUP,
      log: (line) => lines.push(line),
    });
    expect(out.total).toBe(4);
    expect(out.names).toEqual(['Ada Lovelace', 'Alan Turing', 'Jane Doe']);
    expect(out.batch).toEqual(['201 ok', '400 api_validation', '200 ok']);
    expect(out.notified).toEqual([`${GROUP}: 1 people`, 'cld-other: 1 invoices']);
    expect(lines.at(-1)).toBe('missing record -> api_not_found');

    const stored = h.server.stored(GROUP, 'people');
    const jane = stored.find((p) => p.first_name === 'Jane');
    expect(jane?.job_title).toBe('CTO');
    expect(jane?.id).toContainEqual({ id: 'local-1', provider: 'myapp', realm: 'acct-42' });
    expect(h.server.stored(GROUP, 'organizations').map((o) => o.name)).toEqual(['Acme Pty']);
  });

  it('is runnable as a script (node --conditions=@org/source --import tsx)', async () => {
    const script = fileURLToPath(new URL('../examples/quickstart.ts', import.meta.url));
    const env = { ...process.env };
    delete env.CONNEC_HOST;
    const { stdout } = await promisify(execFile)(process.execPath, ['--conditions=@org/source', '--import', 'tsx', script], {
      env,
      cwd: fileURLToPath(new URL('..', import.meta.url)),
    });
    expect(stdout).toContain('iterated: Ada Lovelace, Alan Turing, Jane Doe');
    expect(stdout).toContain('batch: 201 ok | 400 api_validation | 200 ok');
    expect(stdout).toContain('missing record -> api_not_found');
  });
});
