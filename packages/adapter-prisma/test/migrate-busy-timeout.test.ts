// migrate() on SQLite when two processes start together and the first run takes longer than
// the client's busy timeout (here 100 ms, so that a run of a second or so is enough). Its
// contract: "safe when several processes start at once", and `timeoutMs` is how long one run
// may take, including waiting for another process's run (60 s by default). Only the driver's
// busy handler waits for the other process's write lock, so migrate() raises the connection's
// busy timeout to `timeoutMs` for the run: the second process waits, then skips the migration.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createSqliteFile } from './backends.js';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const cleanups: (() => void)[] = [];
afterAll(() => {
  for (const cleanup of cleanups.reverse()) cleanup();
});

// An app migration that takes about a second: a backfilled table and its index (as a real
// migration adding an indexed column to a large table does).
const SLOW = `CREATE TABLE "big" AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 600000)
  SELECT x, hex(randomblob(16)) AS h FROM c;
CREATE INDEX "big_h" ON "big" ("h");
`;

describe('migrate() on SQLite: two processes starting together, the first run slower than the busy timeout', () => {
  it('the second process waits for the first run (within timeoutMs) and skips the migration', async () => {
    const file = createSqliteFile();
    cleanups.push(() => file.remove());
    const dir = mkdtempSync(join(tmpdir(), 'mno-slow-migrations-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, '20270101000000_app_big'));
    writeFileSync(join(dir, '20270101000000_app_big', 'migration.sql'), SLOW);

    const child = join(here, 'fixtures/migrate-child.ts');
    const start = () =>
      run(process.execPath, ['--conditions=@org/source', '--import', 'tsx', child, file.path, dir, '100'], { cwd: join(here, '..') }).then(
        (output) => ({ ok: true as const, result: JSON.parse(output.stdout) as { applied: string[]; skipped: string[] } }),
        (error: { stderr?: string }) => ({ ok: false as const, error: (error.stderr ?? String(error)).split('\n').find((l) => /^\w*Error: /.test(l)) ?? '' }),
      );
    const outcomes = await Promise.all([start(), start()]);
    expect(outcomes, JSON.stringify(outcomes)).toEqual([
      { ok: true, result: expect.any(Object) },
      { ok: true, result: expect.any(Object) },
    ]);
    const results = outcomes.flatMap((o) => (o.ok ? [o.result] : []));
    expect(results.flatMap((r) => r.applied)).toEqual(['20270101000000_app_big']);
    expect(results.flatMap((r) => r.skipped)).toEqual(['20270101000000_app_big']);
  }, 120_000);
});
