// `npm run worker` must open the SQLite file the web process uses: with CRM_DATA_DIR set (read by
// `npm start` and `src/main.ts`), a worker that ignored it ran on examples/crm/.data, another
// database, and applied nothing the web process stored.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestIdp } from '@org/maestrano-sdk/testing';
import { afterAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('the separate worker process (src/worker.ts)', () => {
  it('opens the SQLite file in CRM_DATA_DIR, as the web process does', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'crm-worker-dir-'));
    dirs.push(dataDir);
    const configFile = join(dataDir, 'maestrano.json');
    const idp = createTestIdp();
    writeFileSync(configFile, JSON.stringify({ marketplaces: [idp.marketplace({ name: 'mkt', appHost: 'http://127.0.0.1:3999', apiId: 'app-1', apiKey: 'key-0123456789abcdef' })] }));
    const proc = spawn(process.execPath, ['--conditions=@org/source', '--import', 'tsx', 'src/worker.ts'], {
      cwd: join(here, '..'),
      env: { ...process.env, MAESTRANO_CONFIG: configFile, CRM_DATA_DIR: dataDir, DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const started = await new Promise<string>((resolve, reject) => {
      proc.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const line = out.split('\n').find((l) => l.includes('worker started'));
        if (line) resolve(line);
      });
      proc.once('exit', (code) => reject(new Error(`worker exited ${code}: ${err}`)));
    });
    const stopped = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    await stopped;
    expect(started).toContain(join(dataDir, 'crm.sqlite'));
  }, 60_000);
});
