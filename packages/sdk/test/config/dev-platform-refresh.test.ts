import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { ConfigError, createMaestrano, memoryAdapter, tenantsFromDevPlatform } from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { recordingLogger } from './helpers.js';

/** Each marketplace its own IdP certificate, as on Maestrano (a shared one is logged as a warning). */
const certificates = new Map<string, string>();
const certificateOf = (name: string): string => {
  let pem = certificates.get(name);
  if (pem === undefined) {
    pem = createTestCertificate({ bits: 1024 }).certificate;
    certificates.set(name, pem);
  }
  return pem;
};

/** A marketplace served under another name keeps its app credentials (`name` -> former name). */
let formerNames: Record<string, string> = {};
const marketplace = (name: string) => ({
  marketplace: name,
  app: { host: 'https://app.example.com' },
  api: { id: `app-${formerNames[name] ?? name}`, key: `secret-key-of-${formerNames[name] ?? name}`, host: 'https://api-hub-uat.maestrano.io' },
  sso: { x509_certificate: certificateOf(formerNames[name] ?? name) },
});
const documentOf = (names: string[]) => JSON.stringify({ marketplaces: names.map(marketplace) });


const quiet = recordingLogger().logger;

/**
 * A loopback developer platform. `handle` answers each request (numbered from 1); the default
 * serves `names`.
 */
let names: string[] = [];
let handle: (n: number, req: IncomingMessage, res: ServerResponse) => void;
let requestCount = 0;
let inFlight = 0;
let maxInFlight = 0;
const serveNames = (_n: number, _req: IncomingMessage, res: ServerResponse) => {
  res.setHeader('content-type', 'application/json');
  res.end(documentOf(names));
};
let platform: Server;
let host: string;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mno-devpl-refresh-'));
  platform = createServer((req, res) => {
    const n = ++requestCount;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.on('close', () => inFlight--);
    // No keep-alive: a test that breaks connections must not leave a dead one for the next request.
    res.setHeader('connection', 'close');
    handle(n, req, res);
  });
  await new Promise<void>((resolve) => platform.listen(0, '127.0.0.1', resolve));
  host = `http://127.0.0.1:${(platform.address() as AddressInfo).port}`;
});
afterAll(async () => {
  platform.closeAllConnections();
  await new Promise<void>((resolve) => platform.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});
const reset = () => {
  names = ['alpha', 'beta'];
  formerNames = {};
  handle = serveNames;
  requestCount = 0;
  inFlight = 0;
  maxInFlight = 0;
};
afterEach(() => {
  vi.useRealTimers();
  reset();
});
reset();

const secrets = (...ns: string[]) => ns.map((n) => `secret-key-of-${n}`);

describe('tenantsFromDevPlatform: an empty marketplaces list', () => {
  it('on refresh keeps the current tenants and the cache, with a warning naming no secret', async () => {
    const cacheFile = join(dir, 'empty-refresh.json');
    const { logger, entries } = recordingLogger();
    const tenants = await tenantsFromDevPlatform({ host, key: 'env-key', secret: 'env-secret', cacheFile, refreshMs: 0, logger });
    const cached = await readFile(cacheFile, 'utf8');
    names = [];
    await tenants.refresh();
    expect(tenants.list().map((t) => t.name)).toEqual(['alpha', 'beta']);
    expect(tenants.get('alpha')).toBeDefined();
    expect(await readFile(cacheFile, 'utf8')).toBe(cached);
    expect(entries).toEqual([
      {
        level: 'warn',
        message: 'maestrano: the developer platform returned no marketplaces, keeping the current tenants and cache',
        fields: { source: `${host}/api/config/v1/marketplaces`, tenants: ['alpha', 'beta'] },
      },
    ]);
    expect(JSON.stringify(entries)).not.toMatch(/secret/);
  });

  it('logs the names of the tenants an applied refresh adds and removes', async () => {
    const { logger, entries } = recordingLogger();
    const tenants = await tenantsFromDevPlatform({ host, key: 'k', secret: 's', refreshMs: 0, logger });
    names = ['beta', 'gamma'];
    await tenants.refresh();
    expect(tenants.list().map((t) => t.name)).toEqual(['beta', 'gamma']);
    names = ['beta', 'gamma'];
    await tenants.refresh(); // nothing added or removed: nothing logged
    expect(entries).toEqual([{ level: 'info', message: 'maestrano: tenants refreshed', fields: { added: ['gamma'], removed: ['alpha'] } }]);
  });

  it('warns when a marketplace seems renamed (same api id under a new name): its data stays under the old name', async () => {
    const { logger, entries } = recordingLogger();
    const tenants = await tenantsFromDevPlatform({ host, key: 'k', secret: 's', refreshMs: 0, logger });
    names = ['alpha-2', 'beta'];
    formerNames = { 'alpha-2': 'alpha' };
    await tenants.refresh();
    expect(tenants.list().map((t) => t.name)).toEqual(['alpha-2', 'beta']);
    const warning = entries.find((e) => e.level === 'warn');
    expect(warning?.message).toMatch(/renamed/);
    expect(warning?.fields).toEqual({ from: 'alpha', to: 'alpha-2' });
    expect(JSON.stringify(entries)).not.toMatch(/secret-key/);
  });

  it('at start-up falls back on the cache with a warning, and without a cache is a ConfigError', async () => {
    const cacheFile = join(dir, 'empty-start.json');
    await writeFile(cacheFile, documentOf(['from-cache']));
    names = [];
    const { logger, entries } = recordingLogger();
    const fromCache = await tenantsFromDevPlatform({ host, key: 'k', secret: 's', cacheFile, refreshMs: 0, logger });
    expect(fromCache.source).toBe('cache');
    expect(fromCache.list().map((t) => t.name)).toEqual(['from-cache']);
    expect(await readFile(cacheFile, 'utf8')).toBe(documentOf(['from-cache']));
    expect(entries).toEqual([
      expect.objectContaining({
        level: 'warn',
        message: 'maestrano: developer platform unavailable, using the cached tenants (possibly stale)',
        fields: expect.objectContaining({ reason: expect.stringMatching(/returned no marketplaces/) }),
      }),
    ]);

    const noCache = await tenantsFromDevPlatform({ host, logger: quiet, key: 'k', secret: 's', refreshMs: 0 }).catch((e: unknown) => e);
    expect(noCache).toBeInstanceOf(ConfigError);
    expect((noCache as Error).message).toBe(`The developer platform at ${host}/api/config/v1/marketplaces returned no marketplaces`);

    // An empty cache (written before this check existed) is no fallback either.
    const emptyCache = join(dir, 'empty-cache.json');
    await writeFile(emptyCache, documentOf([]));
    await expect(tenantsFromDevPlatform({ host, logger: quiet, key: 'k', secret: 's', cacheFile: emptyCache, refreshMs: 0 })).rejects.toThrow(
      /returned no marketplaces/,
    );
  });

  it('createMaestrano refuses a static empty tenant list', () => {
    let error: unknown;
    try {
      createMaestrano({
        tenants: [],
        storage: memoryAdapter(),
        provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
        onLogin: () => new Response('ok'),
      } as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([{ path: 'tenants', message: 'must list at least one marketplace' }]);
  });
});

describe('tenantsFromDevPlatform: refreshMs and timeoutMs', () => {
  it('refuses a refreshMs Node.js timers cannot keep (past 2^31-1 ms they fire every 1 ms), negative, NaN or fractional', async () => {
    for (const refreshMs of [2_147_483_648, 30 * 24 * 3600 * 1000, -1, Number.NaN, 999, 1500.5, Number.POSITIVE_INFINITY]) {
      const error = await tenantsFromDevPlatform({ host, logger: quiet, key: 'k', secret: 's', refreshMs }).catch((e: unknown) => e);
      expect(error, String(refreshMs)).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues).toEqual([
        { path: 'refreshMs', message: 'must be 0 (no refresh) or an integer number of ms from 1000 to 2147483647' },
      ]);
    }
    expect(requestCount).toBe(0);
  });

  it('refuses a timeoutMs that is not a positive integer (or past what a timer can hold)', async () => {
    for (const timeoutMs of [0, -5, Number.NaN, 1.5, 2_147_483_648]) {
      const error = await tenantsFromDevPlatform({ host, logger: quiet, key: 'k', secret: 's', refreshMs: 0, timeoutMs }).catch((e: unknown) => e);
      expect(error, String(timeoutMs)).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues).toEqual([{ path: 'timeoutMs', message: 'must be a positive integer number of ms up to 2147483647' }]);
    }
    expect(requestCount).toBe(0);
  });

  it('accepts 0, 1000 and 2^31-1, and the longest period sends no request meanwhile', async () => {
    for (const refreshMs of [0, 1000, 2_147_483_647]) {
      const tenants = await tenantsFromDevPlatform({ host, logger: quiet, key: 'k', secret: 's', refreshMs, timeoutMs: 2_147_483_647 });
      tenants.close();
    }
    const longest = await tenantsFromDevPlatform({ host, logger: quiet, key: 'k', secret: 's', refreshMs: 2_147_483_647 });
    try {
      const before = requestCount;
      await new Promise((r) => setTimeout(r, 200));
      expect(requestCount).toBe(before);
    } finally {
      longest.close();
    }
  });
});

describe('tenantsFromDevPlatform: overlapping refreshes', () => {
  it('never lets an older answer landing last overwrite newer tenants and the cache', async () => {
    const cacheFile = join(dir, 'overlap.json');
    const tenants = await tenantsFromDevPlatform({ host, logger: quiet, key: 'k', secret: 's', cacheFile, refreshMs: 0 });
    // Request 2 (the first refresh) sees alpha+beta but answers late; request 3 sees beta removed.
    let releaseSlow!: () => void;
    const slowReleased = new Promise<void>((resolve) => {
      releaseSlow = resolve;
    });
    handle = (n, req, res) => {
      if (n === 2) {
        const body = documentOf(['alpha', 'beta']);
        void slowReleased.then(() => {
          res.setHeader('content-type', 'application/json');
          res.end(body);
        });
        return;
      }
      serveNames(n, req, res);
    };
    const first = tenants.refresh();
    for (let i = 0; i < 1_000 && requestCount < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(requestCount).toBe(2);
    names = ['alpha'];
    const second = tenants.refresh();
    const third = tenants.refresh(); // joins the queued one
    await new Promise((r) => setTimeout(r, 50));
    releaseSlow();
    await Promise.all([first, second, third]);
    expect(tenants.list().map((t) => t.name)).toEqual(['alpha']);
    expect(JSON.parse(await readFile(cacheFile, 'utf8')).marketplaces.map((m: { marketplace: string }) => m.marketplace)).toEqual(['alpha']);
    expect(requestCount).toBe(3);
    expect(maxInFlight).toBe(1);
  });

  it('a failed refresh keeps the tenants and the cache file, and does not block the next one', async () => {
    const cacheFile = join(dir, 'failed-refresh.json');
    const tenants = await tenantsFromDevPlatform({ host, logger: quiet, key: 'k', secret: 's', cacheFile, refreshMs: 0 });
    const cached = await readFile(cacheFile);
    expect(cached.toString('utf8')).toBe(documentOf(['alpha', 'beta']));
    handle = (_n, _req, res) => {
      res.statusCode = 500;
      res.end(documentOf(['from-the-500']));
    };
    const failing = tenants.refresh();
    const queued = tenants.refresh();
    await expect(failing).rejects.toThrow(/HTTP 500/);
    await expect(queued).rejects.toThrow(/HTTP 500/);
    expect(requestCount).toBe(3);
    expect(tenants.list().map((t) => t.name)).toEqual(['alpha', 'beta']);
    expect((await readFile(cacheFile)).equals(cached)).toBe(true);
    handle = serveNames;
    names = ['gamma'];
    await tenants.refresh();
    expect(tenants.list().map((t) => t.name)).toEqual(['gamma']);
    expect(await readFile(cacheFile, 'utf8')).toBe(documentOf(['gamma']));
  });

  it('a refresh answering an invalid document keeps the tenants and the cache file', async () => {
    const cacheFile = join(dir, 'invalid-refresh.json');
    const tenants = await tenantsFromDevPlatform({ host, logger: quiet, key: 'k', secret: 's', cacheFile, refreshMs: 0 });
    const cached = await readFile(cacheFile);
    for (const body of [JSON.stringify({ marketplaces: [{ ...marketplace('gamma'), sso: {} }] }), '{"marketplaces": [', 'null']) {
      handle = (_n, _req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(body);
      };
      await expect(tenants.refresh(), body).rejects.toThrow(ConfigError);
      expect(tenants.list().map((t) => t.name)).toEqual(['alpha', 'beta']);
      expect((await readFile(cacheFile)).equals(cached), body).toBe(true);
    }
    expect(requestCount).toBe(4);
  });

  it('refreshes on its own every refreshMs until closed', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const { logger, entries } = recordingLogger();
    const tenants = await tenantsFromDevPlatform({ host, key: 'k', secret: 's', refreshMs: 1000, logger });
    try {
      names = ['alpha', 'beta', 'late-market'];
      vi.advanceTimersByTime(999);
      expect(requestCount).toBe(1);
      vi.advanceTimersByTime(1);
      for (let i = 0; i < 1_000 && !tenants.get('late-market'); i++) await new Promise((r) => setTimeout(r, 10));
      expect(tenants.get('late-market')?.name).toBe('late-market');
      expect(entries.map((e) => e.message)).toEqual(['maestrano: tenants refreshed']);
    } finally {
      tenants.close();
    }
    const after = requestCount;
    vi.advanceTimersByTime(10_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(requestCount).toBe(after);
  });
});

describe('tenantsFromDevPlatform: a body that stalls or breaks after the headers', () => {
  const stall = (_n: number, _req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
    res.write('{"marketplaces":[');
  };
  const reset = (_n: number, _req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
    // Cut once the head and the first bytes are out (not on a 20 ms timer, which a loaded event
    // loop could run after the client's 300 ms timeout: a TimeoutError instead of the reset).
    res.write('{"marketplaces":[', () => res.socket?.destroy());
  };

  it('at start-up is a ConfigError naming the developer platform, with the cause', async () => {
    for (const [mode, expectedCause] of [
      [stall, 'TimeoutError'],
      [reset, 'TypeError'],
    ] as const) {
      handle = mode;
      const error = await tenantsFromDevPlatform({ host, logger: quiet, key: 'env-key', secret: 'env-secret', refreshMs: 0, timeoutMs: 300 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toBe(`The developer platform at ${host}/api/config/v1/marketplaces did not send its whole answer`);
      expect(((error as Error).cause as Error).name).toBe(expectedCause);
    }
  });

  it('at refresh time keeps the tenants and the cache file, rejects refresh() with a ConfigError and logs a warning from the timer', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const { logger, entries } = recordingLogger();
    const cacheFile = join(dir, 'stalled-refresh.json');
    const tenants = await tenantsFromDevPlatform({ host, key: 'k', secret: 's', cacheFile, refreshMs: 1000, timeoutMs: 300, logger });
    try {
      const cached = await readFile(cacheFile);
      handle = stall;
      await expect(tenants.refresh()).rejects.toThrow(ConfigError);
      expect(tenants.list().map((t) => t.name)).toEqual(['alpha', 'beta']);
      expect((await readFile(cacheFile)).equals(cached)).toBe(true);
      handle = reset;
      vi.advanceTimersByTime(1000);
      for (let i = 0; i < 1_000 && entries.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(entries).toEqual([
        {
          level: 'warn',
          message: 'maestrano: tenants refresh failed, keeping the current tenants',
          fields: { reason: `The developer platform at ${host}/api/config/v1/marketplaces did not send its whole answer` },
        },
      ]);
      expect(tenants.list().map((t) => t.name)).toEqual(['alpha', 'beta']);
      expect((await readFile(cacheFile)).equals(cached)).toBe(true);
    } finally {
      tenants.close();
    }
  });
});

describe('tenantsFromDevPlatform: start-up with an invalid document from the platform', () => {
  it('uses a good cache with a warning, and leaves the cache file as it was', async () => {
    const cacheFile = join(dir, 'invalid-start.json');
    await writeFile(cacheFile, documentOf(['from-cache']));
    const cached = await readFile(cacheFile);
    handle = (_n, _req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ marketplaces: [{ ...marketplace('from-platform'), app: { host: 'ftp://x' } }] }));
    };
    const { logger, entries } = recordingLogger();
    const tenants = await tenantsFromDevPlatform({ host, key: 'k', secret: 's', cacheFile, refreshMs: 0, logger });
    expect(requestCount).toBe(1);
    expect(tenants.source).toBe('cache');
    expect(tenants.list().map((t) => t.name)).toEqual(['from-cache']);
    expect((await readFile(cacheFile)).equals(cached)).toBe(true);
    expect(entries).toEqual([
      expect.objectContaining({
        level: 'warn',
        message: 'maestrano: developer platform unavailable, using the cached tenants (possibly stale)',
        fields: expect.objectContaining({ reason: expect.stringMatching(/marketplaces\[0\]\.app\.host: must be an http\(s\) URL/) }),
      }),
    ]);
  });
});

describe('a tenant printed or serialised', () => {
  it('never shows api.key, which still reads and spreads', async () => {
    const tenants = await tenantsFromDevPlatform({ host, logger: quiet, key: 'k', secret: 's', refreshMs: 0 });
    const tenant = tenants.get('alpha')!;
    const [key] = secrets('alpha');
    expect(JSON.stringify(tenant)).not.toContain(key);
    expect(JSON.parse(JSON.stringify(tenant)).api).toEqual({ id: 'app-alpha', key: '[redacted]', host: 'https://api-hub-uat.maestrano.io', base: '/api/v1/' });
    expect(JSON.stringify(tenants.list())).not.toContain(key);
    expect(inspect(tenant, { depth: 10 })).not.toContain(key);
    expect(inspect(tenant, { depth: 10, showHidden: true })).not.toContain(key);
    expect(inspect(tenant.api)).toContain("key: '[redacted]'");
    expect(tenant.api.key).toBe(key);
    const spread = { ...tenant.api };
    expect(spread.key).toBe(key);
    expect({ ...tenant, api: { ...tenant.api } }.api.key).toBe(key);
    const clone = structuredClone(tenant);
    expect(clone.api).toEqual({ id: 'app-alpha', key, host: 'https://api-hub-uat.maestrano.io', base: '/api/v1/' });
    expect(tenant.api).toEqual(clone.api);
  });
});
