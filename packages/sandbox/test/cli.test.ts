import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../../scripts/ensure-built.js';
import { basic } from './helpers.js';

const run = promisify(execFile);
const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const rootDir = join(pkgDir, '..', '..');

describe('CLI (built bin)', () => {
  let child: ChildProcess | null = null;
  const others: ChildProcess[] = [];

  beforeAll(async () => {
    // dist/ missing or older than src/: build first, so the test always runs the current code.
    console.log(`packages' dist/: ${await ensureBuilt(['sandbox'])}`);
    if (!existsSync(join(rootDir, 'node_modules', '.bin', 'maestrano-sandbox'))) {
      // npm skips the bin link when dist/cli.js did not exist at install time; re-link it.
      console.log('maestrano-sandbox bin link missing after install: running npm rebuild @org/maestrano-sandbox');
      await run('npm', ['rebuild', '@org/maestrano-sandbox'], { cwd: rootDir, timeout: 120_000 });
    }
  }, 270_000);

  afterAll(async () => {
    for (const proc of [child, ...others]) {
      if (proc?.pid && proc.exitCode === null) {
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        process.kill(-proc.pid, 'SIGTERM');
        await exited;
      }
    }
  });

  /** Runs dist/cli.js with `args` until its output includes `until`; the process is stopped after the tests. */
  async function startCli(args: string[], until: string): Promise<string> {
    const proc = spawn('node', [join(pkgDir, 'dist', 'cli.js'), ...args], { cwd: rootDir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    others.push(proc);
    let out = '';
    let err = '';
    proc.stderr?.on('data', (c: Buffer) => {
      err += c.toString();
    });
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`CLI did not start: ${out}${err}`)), 60_000);
      proc.stdout?.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes(until)) {
          clearTimeout(timer);
          resolve(out);
        }
      });
      proc.once('exit', (code) => reject(new Error(`CLI exited with ${code}: ${out}${err}`)));
    });
  }

  async function marketplacesDoc(out: string, url: string) {
    const envKey = /Environment key:\s+(\S+)/.exec(out)?.[1];
    const envSecret = /Environment secret:\s*(\S+)/.exec(out)?.[1];
    if (!envKey || !envSecret) throw new Error(`unexpected output: ${out}`);
    const doc = await fetch(`${url}/api/config/v1/marketplaces`, { headers: { authorization: basic(envKey, envSecret) } });
    expect(doc.status).toBe(200);
    return ((await doc.json()) as { marketplaces: Array<{ app: { host: string }; api: { host: string }; sso: { idp: string }; connec: { host: string } }> })
      .marketplaces[0];
  }

  it('--public-url: the sandbox listens on host:port and advertises the public URL; the default app URL shares its host name', async () => {
    const out = await startCli(['--port', '0', '--public-url', 'http://sandbox.test:4555/'], 'Admin API:');
    const listening = /listening on (http:\/\/\S+)/.exec(out)?.[1];
    expect(listening).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(out).toMatch(/Public URL:\s+http:\/\/sandbox\.test:4555\n/);
    expect(out).toContain('IdP:               http://sandbox.test:4555/api/v1/auth/saml');
    const m = await marketplacesDoc(out, listening ?? '');
    expect(m?.api.host).toBe('http://sandbox.test:4555');
    expect(m?.sso.idp).toBe('http://sandbox.test:4555');
    expect(m?.connec.host).toBe('http://sandbox.test:4555');
    expect(m?.app.host).toBe('http://sandbox.test:3000');
  });

  it('without --app-url, the app URL uses the host the sandbox binds and advertises (127.0.0.1), not localhost', async () => {
    const out = await startCli(['--port', '0'], 'Admin API:');
    const url = /listening on (http:\/\/\S+)/.exec(out)?.[1] ?? '';
    expect(out).not.toContain('Public URL:');
    const m = await marketplacesDoc(out, url);
    expect(m?.sso.idp).toBe(url);
    expect(m?.app.host).toBe('http://127.0.0.1:3000');
  });

  it('--help documents --public-url', async () => {
    const { stdout } = await run('node', [join(pkgDir, 'dist', 'cli.js'), '--help']);
    expect(stdout).toContain('--public-url');
    expect(stdout).toContain('--app-url http://127.0.0.1:3000');
  });

  it('npx maestrano-sandbox --seed 1000 starts, prints URLs and credentials that work', async () => {
    expect(existsSync(join(rootDir, 'node_modules', '.bin', 'maestrano-sandbox'))).toBe(true);
    const proc = spawn('npx', ['--no-install', 'maestrano-sandbox', '--seed', '1000', '--port', '0', '--app-url', 'http://localhost:3999'], {
      cwd: rootDir,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let out = '';
    let err = '';
    proc.stderr?.on('data', (c: Buffer) => {
      err += c.toString();
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`CLI did not start: ${out}${err}`)), 60_000);
      proc.stdout?.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('Seeded:')) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code) => reject(new Error(`CLI exited with ${code}: ${out}${err}`)));
    });
    const url = /listening on (http:\/\/\S+)/.exec(out)?.[1];
    const envKey = /Environment key:\s+(\S+)/.exec(out)?.[1];
    const envSecret = /Environment secret:\s*(\S+)/.exec(out)?.[1];
    const market = /Marketplace sandbox: api id (\S+)\s+api key (\S+)/.exec(out);
    expect(out).toMatch(/Seeded: \d+ groups, \d+ users, 1000 Connec! records/);
    if (!url || !envKey || !envSecret || !market?.[1] || !market[2]) throw new Error(`unexpected output: ${out}`);
    const doc = await fetch(`${url}/api/config/v1/marketplaces`, { headers: { authorization: basic(envKey, envSecret) } });
    expect(doc.status).toBe(200);
    const body = (await doc.json()) as { marketplaces: Array<{ api: { id: string }; app: { host: string } }> };
    expect(body.marketplaces[0]?.api.id).toBe(market[1]);
    expect(body.marketplaces[0]?.app.host).toBe('http://localhost:3999');
    const people = await fetch(`${url}/api/v2/cld-sbx1/people?$top=1`, { headers: { authorization: basic(market[1], market[2]) } });
    expect(((await people.json()) as { pagination: { total: number } }).pagination.total).toBeGreaterThan(0);
  });

  it('--data: a second sandbox on the file exits 1 with a clear message while the first runs on; a SIGKILLed one leaves the file usable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sandbox-cli-data-'));
    const dataFile = join(dir, 'state.sqlite');
    try {
      const out = await startCli(['--port', '0', '--data', dataFile, '--seed', '50'], 'Data file:');
      const first = others.at(-1);
      const url = /listening on (http:\/\/\S+)/.exec(out)?.[1] ?? '';
      const envKey = /Environment key:\s+(\S+)/.exec(out)?.[1];
      const second = await run('node', [join(pkgDir, 'dist', 'cli.js'), '--port', '0', '--data', dataFile], { timeout: 20_000 }).catch((e: { code: number; stderr: string }) => e);
      expect(second).toMatchObject({ code: 1 });
      expect((second as { stderr: string }).stderr).toContain(`maestrano-sandbox: The data file ${dataFile} is in use by another running sandbox`);
      expect(first?.exitCode).toBeNull();
      await marketplacesDoc(out, url);

      // A killed sandbox gets no chance to clean up; the OS drops its SQLite lock with the process.
      if (!first) throw new Error('no first CLI');
      others.splice(others.indexOf(first), 1); // afterAll must not signal its (gone) process group
      const exited = new Promise((resolve) => first.once('exit', resolve));
      first.kill('SIGKILL');
      await exited;
      const again = await startCli(['--port', '0', '--data', dataFile, '--seed', '50'], 'Data file:');
      expect(again).not.toContain('Seeded:');
      expect(/Environment key:\s+(\S+)/.exec(again)?.[1]).toBe(envKey);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects bad options with exit code 2 and a usage message', async () => {
    const res = await run('node', [join(pkgDir, 'dist', 'cli.js'), '--seed', 'lots']).catch((e: { code: number; stderr: string }) => e);
    expect(res).toMatchObject({ code: 2 });
    expect((res as { stderr: string }).stderr).toContain('--seed must be a non-negative integer');
    const bad = await run('node', [join(pkgDir, 'dist', 'cli.js'), '--public-url', 'sandbox.test:4000']).catch((e: { code: number; stderr: string }) => e);
    expect(bad).toMatchObject({ code: 2 });
    expect((bad as { stderr: string }).stderr).toContain('--public-url must be an http(s) URL');
  });

  it('rejects an out-of-range --port and invalid --marketplaces names with exit code 2', async () => {
    const port = await run('node', [join(pkgDir, 'dist', 'cli.js'), '--port', '70000']).catch((e: { code: number; stderr: string }) => e);
    expect(port).toMatchObject({ code: 2 });
    expect((port as { stderr: string }).stderr).toContain('--port must be between 0 and 65535');
    const market = await run('node', [join(pkgDir, 'dist', 'cli.js'), '--port', '0', '--marketplaces', 'alpha,be ta']).catch((e: { code: number; stderr: string }) => e);
    expect(market).toMatchObject({ code: 2 });
    expect((market as { stderr: string }).stderr).toContain("--marketplaces: invalid marketplace name 'be ta'");
  });
});
