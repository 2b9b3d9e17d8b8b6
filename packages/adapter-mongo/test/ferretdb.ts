import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { MongoClient } from 'mongodb';

/** Finds the ferretdb binary: `FERRETDB_BIN`, /usr/local/bin, then PATH. */
export function findFerretDb(): string | null {
  const candidates = [process.env['FERRETDB_BIN'], '/usr/local/bin/ferretdb', ...(process.env['PATH'] ?? '').split(delimiter).map((dir) => join(dir, 'ferretdb'))];
  for (const candidate of candidates) {
    if (!candidate) continue;
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * Where data directories go: `FERRETDB_DATA_ROOT`, else /dev/shm when present (SQLite's
 * syncs on a disk make every write several times slower), else the OS temp directory.
 */
function dataRoot(): string {
  const configured = process.env['FERRETDB_DATA_ROOT'];
  if (configured) return configured;
  return existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A FerretDB process (SQLite handler) on a loopback port with its own data directory.
 * `stop()` and `start()` can be called repeatedly (same port, same data), which the outage
 * test uses; `destroy()` stops it and removes the data.
 */
export class FerretDbServer {
  readonly url: string;
  private process: ChildProcess | null = null;
  private output = '';

  private constructor(
    private readonly binary: string,
    readonly port: number,
    readonly dataDir: string,
  ) {
    this.url = `mongodb://127.0.0.1:${port}/`;
  }

  static async launch(binary: string): Promise<FerretDbServer> {
    const server = new FerretDbServer(binary, await freePort(), mkdtempSync(join(dataRoot(), 'mno-ferretdb-')));
    await server.start();
    return server;
  }

  async start(): Promise<void> {
    if (this.process) return;
    this.output = '';
    const child = spawn(
      this.binary,
      [
        '--handler=sqlite',
        `--sqlite-url=file:${this.dataDir}/`,
        `--listen-addr=127.0.0.1:${this.port}`,
        `--state-dir=${this.dataDir}`,
        '--debug-addr=-',
        '--telemetry=disable',
        '--log-level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.process = child;
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`ferretdb exited with ${code} before accepting connections:\n${this.output}`))),
    );
    await Promise.race([this.waitReady(), exited]);
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const client = new MongoClient(this.url, { serverSelectionTimeoutMS: 500, connectTimeoutMS: 500 });
      try {
        await client.db('admin').command({ ping: 1 });
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`ferretdb did not accept connections on ${this.url}: ${String(err)}\n${this.output}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      } finally {
        await client.close().catch(() => undefined);
      }
    }
  }

  async stop(): Promise<void> {
    const child = this.process;
    if (!child) return;
    this.process = null;
    if (child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
    });
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
