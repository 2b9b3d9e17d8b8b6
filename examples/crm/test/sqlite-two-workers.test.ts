// The CRM's documented scale-out on its default SQLite database (docs/workers-at-scale.md: the
// web process, any number of workers and the CRM's own tables share one database; src/db.ts
// sets WAL and a 10 s busy timeout for this). Two worker processes apply Connec! people at
// once, each record the CRM's `contacts.local.create` hook plus the SDK's id-map insert. No
// write may fail with SQLITE_BUSY: the CRM's writes are single statements, which the busy
// timeout makes wait their turn (an upsert, run as BEGIN; SELECT; INSERT, failed at once).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db.js';

const here = dirname(fileURLToPath(import.meta.url));
const CHILD = join(here, 'fixtures/sqlite-worker-writes-child.ts');
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function start(dataDir: string, name: string): { proc: ChildProcess; ready: Promise<void>; done: Promise<string> } {
  const proc = spawn(process.execPath, ['--conditions=@org/source', '--import', 'tsx', CHILD, dataDir, name, '300'], {
    cwd: join(here, '..'),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    proc.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('ready\n')) resolve();
    });
    proc.once('exit', (code) => reject(new Error(`${name} exited ${code}: ${err}`)));
  });
  const done = new Promise<string>((resolve, reject) =>
    proc.once('exit', (code) => (code === 0 ? resolve(out.split('\n').filter(Boolean).at(-1) ?? '') : reject(new Error(`${name} exited ${code}: ${err}`)))),
  );
  return { proc, ready, done };
}

describe('example CRM on SQLite: two worker processes applying records at once', () => {
  it('no record fails with "database is locked": every write waits its turn', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'crm-two-workers-'));
    dirs.push(dataDir);
    const db = await openDatabase({ dataDir });
    await db.prisma.company.create({ data: { id: 'co_1', name: 'Acme', tenant: 'maestrano', groupId: 'cld-1', currency: 'AUD' } });
    await db.close();

    const workers = [start(dataDir, 'w1'), start(dataDir, 'w2')];
    await Promise.all(workers.map((w) => w.ready));
    for (const w of workers) w.proc.stdin?.write('go\n');
    const results = (await Promise.all(workers.map((w) => w.done))).map(
      (line) => JSON.parse(line) as { name: string; created: number; failures: string[] },
    );
    const failures = results.flatMap((r) => r.failures.map((f) => `${r.name}: ${f}`));
    expect(failures).toEqual([]);
    expect(results.map((r) => r.created)).toEqual([300, 300]);
  }, 120_000);
});
