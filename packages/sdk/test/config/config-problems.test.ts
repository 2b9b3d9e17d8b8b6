import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import {
  ConfigError,
  configFromEnv,
  consoleLogger,
  createMaestrano,
  type Logger,
  type MaestranoConfigInput,
  type MarketplaceInput,
  memoryAdapter,
  parseMarketplacesDocument,
  resolveTenants,
  tenantsFromDevPlatform,
} from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { configError, type LoopbackPlatform, startPlatform } from './helpers.js';

const { certificate, fingerprint } = createTestCertificate({ bits: 1024 });
const other = createTestCertificate({ bits: 1024 });

const TENANT_KEY = 'tenant-api-key-must-not-leak';
const marketplace = (name: string, overrides: Record<string, unknown> = {}): MarketplaceInput =>
  ({
    marketplace: name,
    app: { host: 'https://app.example.com' },
    api: { id: `app-${name}`, key: TENANT_KEY, host: 'https://api-hub.example.com' },
    sso: { x509_certificate: certificate },
    ...overrides,
  }) as MarketplaceInput;

const config = (overrides: Record<string, unknown> = {}): MaestranoConfigInput =>
  ({
    tenants: [marketplace('acme')],
    storage: memoryAdapter(),
    provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
    onLogin: () => new Response('ok'),
    logger: quiet,
    ...overrides,
  }) as MaestranoConfigInput;

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const documentOf = (...ms: MarketplaceInput[]) => JSON.stringify({ marketplaces: ms });

const serve = (res: ServerResponse, body: string, status = 200) => {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(body);
};
const serveAcme = (_n: number, _req: unknown, res: ServerResponse) => serve(res, documentOf(marketplace('acme')));

let dir: string;
/** The developer platform, on a real loopback HTTP server (answers `acme` unless a case says otherwise). */
let platform: LoopbackPlatform;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mno-config-problems-'));
  platform = await startPlatform(serveAcme);
});
afterAll(async () => {
  await platform.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  platform.handle = serveAcme;
  platform.requests.length = 0;
});

const TIMEOUT_MESSAGE = 'must be a number of seconds from 0.001 to 2147483.647 (1 to 2147483647 ms once rounded to whole ms)';

describe('connec.timeout is checked at config time', () => {
  it('refuses a timeout whose ms do not fit the Connec! client (0.0001 s -> 0 ms, 3e6 s -> 3e9 ms), naming the key', () => {
    for (const timeout of [0.0001, 0.0004, 3e6, 2_147_483.648, -1]) {
      const e = configError(() => createMaestrano(config({ tenants: [marketplace('acme', { connec: { timeout } })] })));
      expect(e.issues, String(timeout)).toEqual([{ path: 'tenants[0].connec.timeout', message: TIMEOUT_MESSAGE }]);
      const doc = configError(() => parseMarketplacesDocument({ marketplaces: [marketplace('acme', { connec: { timeout } })] }, 'doc'));
      expect(doc.issues, String(timeout)).toEqual([{ path: 'marketplaces[0].connec.timeout', message: TIMEOUT_MESSAGE }]);
    }
  });

  it('accepts every timeout that rounds to 1..2^31-1 ms', () => {
    const ms = (timeout: number) => resolveTenants([marketplace('acme', { connec: { timeout } })])[0]?.connec.timeoutMs;
    expect(ms(0.001)).toBe(1);
    expect(ms(0.0005)).toBe(1);
    expect(ms(300)).toBe(300_000);
    expect(ms(2_147_483.647)).toBe(2_147_483_647);
  });

  it('a dev-platform refresh serving such a timeout is refused and keeps the current tenants and the cache file', async () => {
    let served = documentOf(marketplace('acme'));
    platform.handle = (_n, _req, res) => serve(res, served);
    const cacheFile = join(dir, 'timeout-refresh-cache.json');
    const tenants = await tenantsFromDevPlatform({ host: platform.host, key: 'k', secret: 's', cacheFile, refreshMs: 0, logger: quiet });
    try {
      const cached = await readFile(cacheFile);
      expect(cached.toString('utf8')).toBe(served);
      served = documentOf(marketplace('acme', { connec: { timeout: 3e6 } }), marketplace('beta'));
      const error = await tenants.refresh().catch((e: unknown) => e);
      expect(platform.requests).toHaveLength(2);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues).toEqual([{ path: 'marketplaces[0].connec.timeout', message: TIMEOUT_MESSAGE }]);
      expect(tenants.list().map((t) => [t.name, t.connec.timeoutMs])).toEqual([['acme', 60_000]]);
      // The last good document stays in the cache, byte for byte.
      expect((await readFile(cacheFile)).equals(cached)).toBe(true);
    } finally {
      tenants.close();
    }
  });
});

describe('a config error lists every problem', () => {
  it('reports every bad certificate, bad fingerprint and mismatch, each under its own path', () => {
    const e = configError(() =>
      parseMarketplacesDocument(
        {
          marketplaces: [
            marketplace('a', { sso: { x509_certificate: 'not a pem' } }),
            marketplace('b', { sso: { x509_certificate: `-----BEGIN PRIVATE KEY-----\n${TENANT_KEY}\n-----END PRIVATE KEY-----` } }),
            marketplace('c', { sso: { x509_fingerprint: 'zz:11' } }),
            marketplace('d', { sso: { x509_certificate: certificate, x509_fingerprint: other.fingerprint } }),
            marketplace('e', { sso: {} }),
            marketplace('f', { sso: { x509_certificate: certificate, x509_fingerprint: fingerprint } }),
          ],
        },
        'doc',
      ),
    );
    expect(e.issues).toEqual([
      { path: 'marketplaces[0].sso.x509_certificate', message: 'not a valid PEM certificate' },
      { path: 'marketplaces[1].sso.x509_certificate', message: 'not a valid PEM certificate' },
      { path: 'marketplaces[2].sso.x509_fingerprint', message: 'not a SHA-1 fingerprint (40 hex digits)' },
      { path: 'marketplaces[3].sso.x509_fingerprint', message: 'does not match the configured certificate (sso.x509_certificate)' },
      { path: 'marketplaces[4].sso.x509_certificate', message: 'required when SSO is enabled (or sso.x509_fingerprint as a fallback)' },
    ]);
    for (const issue of e.issues) expect(e.message).toContain(`${issue.path}: ${issue.message}`);
    expect(e.message + JSON.stringify(e.issues) + inspect(e, { depth: 10 })).not.toContain(TENANT_KEY);
  });

  it('reports every duplicate marketplace name at its own path in a marketplaces document, merged with the schema issues', () => {
    const e = configError(() =>
      parseMarketplacesDocument(
        {
          marketplaces: [
            marketplace('a'),
            marketplace('a'),
            marketplace('b', { sso: { x509_certificate: 'not a pem' } }),
            marketplace('b', { app: { host: 'ftp://x' } }),
            marketplace('a'),
          ],
        },
        'doc',
      ),
    );
    expect(e.issues).toEqual([
      { path: 'marketplaces[2].sso.x509_certificate', message: 'not a valid PEM certificate' },
      { path: 'marketplaces[3].app.host', message: 'must be an http(s) URL' },
      { path: 'marketplaces[1].marketplace', message: 'duplicate marketplace "a" (also marketplaces[0])' },
      { path: 'marketplaces[3].marketplace', message: 'duplicate marketplace "b" (also marketplaces[2])' },
      { path: 'marketplaces[4].marketplace', message: 'duplicate marketplace "a" (also marketplaces[0])' },
    ]);
    // Explicit tenants are named `tenants[i]`.
    expect(configError(() => resolveTenants([marketplace('a'), marketplace('a')])).issues).toEqual([
      { path: 'tenants[1].marketplace', message: 'duplicate marketplace "a" (also tenants[0])' },
    ]);
  });

  it('still accepts two marketplaces sharing an api id', () => {
    const api = { id: 'app-shared', key: TENANT_KEY, host: 'https://api-hub.example.com' };
    expect(resolveTenants([marketplace('a', { api }), marketplace('b', { api })]).map((t) => t.name)).toEqual(['a', 'b']);
  });

  it('createMaestrano lists the tenant problems together with the top-level ones', () => {
    const e = configError(() =>
      createMaestrano(
        config({
          onLogin: 5,
          tenants: [marketplace('a', { sso: { x509_certificate: 'not a pem' } }), marketplace('a', { connec: { timeout: 0.0001 } })],
        }),
      ),
    );
    expect(e.issues).toEqual([
      { path: 'onLogin', message: 'onLogin must be a function' },
      { path: 'tenants[0].sso.x509_certificate', message: 'not a valid PEM certificate' },
      { path: 'tenants[1].connec.timeout', message: TIMEOUT_MESSAGE },
      { path: 'tenants[1].marketplace', message: 'duplicate marketplace "a" (also tenants[0])' },
    ]);
    expect(e.message).toMatch(/^Invalid Maestrano configuration:\n/);
    expect(e.message).not.toContain(TENANT_KEY);
  });
});

describe('the developer platform host, key and secret are checked', () => {
  const env = { MNO_DEVPL_ENV_KEY: 'env-key', MNO_DEVPL_ENV_SECRET: 'ENV-SECRET' };
  const badHosts: [string, string][] = [
    ['https://user:HOST-PASSWORD@dev.example.com', 'must not carry credentials'],
    ['https://dev.example.com?env=HOST-PASSWORD', 'must not have a query or fragment'],
    ['https://dev.example.com/#HOST-PASSWORD', 'must not have a query or fragment'],
    ['https://dev.example.com HOST-PASSWORD', 'must be an http(s) URL'],
    ['dev.example.com', 'must be an http(s) URL'],
  ];

  it('configFromEnv refuses a host with credentials, a query, a fragment or a space, naming the problem without the value', () => {
    for (const [host, message] of badHosts) {
      const e = configError(() => configFromEnv({ ...env, MNO_DEVPL_HOST: host }));
      expect(e.issues, host).toEqual([{ path: 'MNO_DEVPL_HOST', message }]);
      expect(e.message + inspect(e, { depth: 10 })).not.toMatch(/HOST-PASSWORD|ENV-SECRET/);
    }
    expect(configFromEnv({ ...env, MNO_DEVPL_HOST: 'https://dev.example.com/' }).host).toBe('https://dev.example.com/');
  });

  it('configFromEnv treats a key or secret of only whitespace as missing', () => {
    const e = configError(() => configFromEnv({ MNO_DEVPL_ENV_KEY: ' ', MNO_DEVPL_ENV_SECRET: '\t\n' }));
    expect(e.issues).toEqual([
      { path: 'MNO_DEVPL_ENV_KEY', message: 'required' },
      { path: 'MNO_DEVPL_ENV_SECRET', message: 'required' },
    ]);
  });

  it('tenantsFromDevPlatform refuses the same hosts and blank key/secret before any request, never showing the password', async () => {
    // The same problems, each on a host that would otherwise reach the loopback platform.
    const { host: loopback } = platform;
    const loopbackBadHosts: [string, string][] = [
      [loopback.replace('http://', 'http://user:HOST-PASSWORD@'), 'must not carry credentials'],
      [`${loopback}?env=HOST-PASSWORD`, 'must not have a query or fragment'],
      [`${loopback}/#HOST-PASSWORD`, 'must not have a query or fragment'],
      [`${loopback} HOST-PASSWORD`, 'must be an http(s) URL'],
      [loopback.replace('http://', ''), 'must be an http(s) URL'],
    ];
    for (const [host, message] of [...badHosts, ...loopbackBadHosts]) {
      const error = await tenantsFromDevPlatform({ host, key: 'k', secret: 's', refreshMs: 0, logger: quiet }).catch((e: unknown) => e);
      expect(error, host).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues, host).toEqual([{ path: 'host', message }]);
      expect(inspect(error, { depth: 10 })).not.toContain('HOST-PASSWORD');
    }
    // The API path as configFromEnv checks it: a query, fragment or URL requested another URL.
    for (const apiPath of ['/api/config/v1?token=PATH-SECRET', '/api/config/v1#PATH-SECRET', 'https://dev.example.com/api', '/api/con fig']) {
      const error = await tenantsFromDevPlatform({ host: loopback, apiPath, key: 'k', secret: 's', refreshMs: 0, logger: quiet }).catch((e: unknown) => e);
      expect((error as ConfigError).issues, apiPath).toEqual([{ path: 'apiPath', message: 'must be a path such as /api/config/v1, without whitespace, query or fragment' }]);
      expect(inspect(error, { depth: 10 })).not.toContain('PATH-SECRET');
    }
    const blank = await tenantsFromDevPlatform({ host: loopback, key: ' ', secret: '  ', refreshMs: 0 }).catch((e: unknown) => e);
    expect((blank as ConfigError).issues).toEqual([
      { path: 'key', message: 'required' },
      { path: 'secret', message: 'required' },
    ]);
    expect(platform.requests).toHaveLength(0);
    // The same call with a good host and key reaches the platform (the count above can move).
    const good = await tenantsFromDevPlatform({ host: loopback, key: 'k', secret: 's', refreshMs: 0, logger: quiet });
    expect(good.list().map((t) => t.name)).toEqual(['acme']);
    expect(platform.requests).toHaveLength(1);
    good.close();
  });
});

describe('configFromEnv trims every value before use', () => {
  const ENV_PATH = '/api/config/v1/marketplaces';
  /** Answers only `env-key:env-secret` at the default API path: a stray `\r` or space was a 401 or "unreachable". */
  const strictPlatform = (_n: number, req: { url?: string; headers: { authorization?: string } }, res: ServerResponse) => {
    const auth = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString('utf8');
    if (auth !== 'env-key:env-secret') return serve(res, '{"error":"unauthorized"}', 401);
    if (req.url !== ENV_PATH) return serve(res, '{"error":"not found"}', 404);
    serve(res, documentOf(marketplace('acme')));
  };
  const load = async (env: Record<string, string>) => {
    platform.handle = strictPlatform;
    const tenants = await tenantsFromDevPlatform({ ...configFromEnv(env), refreshMs: 0, logger: quiet });
    const names = tenants.list().map((t) => t.name);
    tenants.close();
    return names;
  };

  it('MNO_DEVPL_ENV_KEY / _SECRET from a CRLF .env file are sent without the \\r', async () => {
    await expect(load({ MNO_DEVPL_HOST: platform.host, MNO_DEVPL_ENV_KEY: 'env-key\r', MNO_DEVPL_ENV_SECRET: 'env-secret\r' })).resolves.toEqual(['acme']);
  });

  it('MNO_DEVPL_HOST and MNO_DEVPL_API_PATH with surrounding spaces work', async () => {
    const env = { MNO_DEVPL_HOST: ` ${platform.host} `, MNO_DEVPL_API_PATH: '/api/config/v1 ', MNO_DEVPL_ENV_KEY: 'env-key', MNO_DEVPL_ENV_SECRET: 'env-secret' };
    await expect(load(env)).resolves.toEqual(['acme']);
    expect(configFromEnv({ ...env, MNO_DEVPL_ENV_NAME: 'prod\r\n' })).toEqual({
      host: platform.host,
      apiPath: '/api/config/v1',
      key: 'env-key',
      secret: 'env-secret',
      environmentName: 'prod',
    });
    // Empty once trimmed: the defaults.
    expect(configFromEnv({ ...env, MNO_DEVPL_HOST: ' ', MNO_DEVPL_API_PATH: '\r', MNO_DEVPL_ENV_NAME: ' ' })).toMatchObject({
      host: 'https://developer.maestrano.com',
      apiPath: '/api/config/v1',
      environmentName: null,
    });
  });

  it('refuses an MNO_DEVPL_API_PATH that is not a path without whitespace, query or fragment, naming it', () => {
    const env = { MNO_DEVPL_ENV_KEY: 'env-key', MNO_DEVPL_ENV_SECRET: 'ENV-SECRET' };
    for (const apiPath of ['/api/config v1', '/api/config/v1?token=PATH-SECRET', '/api/config/v1#PATH-SECRET', '/api/con\u0000fig', 'https://dev.example.com/api', 'api/v1?PATH-SECRET']) {
      const e = configError(() => configFromEnv({ ...env, MNO_DEVPL_API_PATH: apiPath }));
      expect(e.issues, apiPath).toEqual([{ path: 'MNO_DEVPL_API_PATH', message: 'must be a path such as /api/config/v1, without whitespace, query or fragment' }]);
      expect(e.message + inspect(e, { depth: 10 })).not.toMatch(/PATH-SECRET|ENV-SECRET/);
    }
    // Without its leading slash it is the same path, as tenantsFromDevPlatform always read it.
    expect(configFromEnv({ ...env, MNO_DEVPL_API_PATH: 'api/config/v1' }).apiPath).toBe('/api/config/v1');
    // Reported together with the other variables' problems.
    expect(configError(() => configFromEnv({ MNO_DEVPL_HOST: 'dev.example.com', MNO_DEVPL_API_PATH: 'x y' })).issues.map((i) => i.path)).toEqual([
      'MNO_DEVPL_ENV_KEY',
      'MNO_DEVPL_ENV_SECRET',
      'MNO_DEVPL_HOST',
      'MNO_DEVPL_API_PATH',
    ]);
  });

  it('refuses whitespace or a control character inside MNO_DEVPL_HOST', () => {
    const e = configError(() => configFromEnv({ MNO_DEVPL_HOST: 'https://dev.exa\nmple.com', MNO_DEVPL_ENV_KEY: 'k', MNO_DEVPL_ENV_SECRET: 's' }));
    expect(e.issues).toEqual([{ path: 'MNO_DEVPL_HOST', message: 'must not contain whitespace or control characters' }]);
  });
});

describe('tenantsFromDevPlatform: close() during a refresh', () => {
  it('aborts the download in flight: the platform sees the connection closed before it answered', async () => {
    /** Resolves when the platform's held answer loses its connection: true if it was never sent. */
    let closedUnanswered: Promise<boolean> | undefined;
    platform.handle = (n, _req, res) => {
      if (n === 1) return serveAcme(n, _req, res);
      // Holds the answer for as long as the client keeps the connection.
      closedUnanswered = new Promise((resolve) => res.on('close', () => resolve(!res.writableFinished)));
    };
    const warnings: string[] = [];
    const logger: Logger = { ...quiet, warn: (m) => warnings.push(m) };
    const tenants = await tenantsFromDevPlatform({ host: platform.host, key: 'k', secret: 's', refreshMs: 0, timeoutMs: 60_000, logger });
    const pending = tenants.refresh();
    await vi.waitFor(() => expect(closedUnanswered).toBeDefined(), { timeout: 10_000 });
    tenants.close();
    // Without the abort the download would wait the whole 60 s timeout and the connection would
    // stay open (this await would never end).
    expect(await closedUnanswered).toBe(true);
    await expect(pending).resolves.toBeUndefined();
    expect(platform.requests).toHaveLength(2);
    expect(tenants.list().map((t) => t.name)).toEqual(['acme']);
    expect(warnings).toEqual([]);
  });

  it('never replaces the tenants nor writes the cache (or recreates its deleted directory) once closed', async () => {
    const cacheDir = join(dir, 'closed-cache');
    const cacheFile = join(cacheDir, 'marketplaces.json');
    let answer: ((body: string) => void) | undefined;
    platform.handle = (n, _req, res) => {
      if (n === 1) return serveAcme(n, _req, res);
      answer = (body) => serve(res, body);
    };
    // A real fetch that ignores the abort: the refresh must still see that the registry was closed.
    const ignoringAbort = ((url: string, init?: RequestInit) => fetch(url, { ...init, signal: null })) as typeof fetch;
    const tenants = await tenantsFromDevPlatform({ host: platform.host, key: 'k', secret: 's', cacheFile, refreshMs: 0, fetch: ignoringAbort, logger: quiet });
    expect(JSON.parse(await readFile(cacheFile, 'utf8')).marketplaces).toHaveLength(1);
    const pending = tenants.refresh();
    await vi.waitFor(() => expect(answer).toBeDefined(), { timeout: 10_000 });
    tenants.close();
    await rm(cacheDir, { recursive: true, force: true });
    answer?.(documentOf(marketplace('acme'), marketplace('late')));
    await expect(pending).resolves.toBeUndefined();
    expect(tenants.list().map((t) => t.name)).toEqual(['acme']);
    expect(await stat(cacheDir).then(() => 'exists', () => 'gone')).toBe('gone');
    // And a refresh asked for after close() downloads nothing.
    await tenants.refresh();
    expect(platform.requests).toHaveLength(2);
  });
});

describe('tenantsFromDevPlatform: start-up with a failing platform and an unusable cache', () => {
  beforeEach(() => {
    platform.handle = (_n, _req, res) => serve(res, '{"error":"Could not authenticate"}', 401);
  });

  it('names the platform failure and the cache problem, with the platform error as the cause, without secrets', async () => {
    const invalid = join(dir, 'invalid-cache.json');
    await writeFile(invalid, documentOf(marketplace('acme', { sso: {} })));
    const notJson = join(dir, 'not-json-cache.json');
    await writeFile(notJson, `{"marketplaces": [{"api": {"key": "${TENANT_KEY}"`);
    const empty = join(dir, 'empty-cache.json');
    await writeFile(empty, documentOf());
    for (const [cacheFile, problem] of [
      [invalid, `Invalid marketplaces document from ${invalid}:\n  - marketplaces[0].sso.x509_certificate: required when SSO is enabled`],
      [notJson, 'it is not valid JSON'],
      [empty, 'it lists no marketplaces'],
    ] as const) {
      const before = await readFile(cacheFile);
      const error = await tenantsFromDevPlatform({
        host: platform.host,
        key: 'env-key-1',
        secret: 'env-secret-1',
        cacheFile,
        refreshMs: 0,
        logger: quiet,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as Error).message;
      expect(message).toMatch(/^The developer platform refused the environment credentials \(HTTP 401\); /);
      expect(message).toContain(`the tenants cache file ${cacheFile} cannot be used instead: ${problem}`);
      expect(((error as Error).cause as Error).message).toBe('The developer platform refused the environment credentials (HTTP 401)');
      expect(inspect(error, { depth: 10 })).not.toMatch(new RegExp(`${TENANT_KEY}|env-key-1|env-secret-1`));
      // The unusable cache is left as it was (the 401 answer is not written over it).
      expect((await readFile(cacheFile)).equals(before)).toBe(true);
    }
    expect(platform.requests).toHaveLength(3);
    const withIssues = await tenantsFromDevPlatform({ host: platform.host, key: 'k', secret: 's', cacheFile: invalid, refreshMs: 0, logger: quiet }).catch(
      (e: unknown) => e as ConfigError,
    );
    expect((withIssues as ConfigError).issues).toEqual([
      { path: 'marketplaces[0].sso.x509_certificate', message: 'required when SSO is enabled (or sso.x509_fingerprint as a fallback)' },
    ]);
  });

  it('without a cache file yet, is the platform failure alone', async () => {
    const error = await tenantsFromDevPlatform({
      host: platform.host,
      key: 'k',
      secret: 's',
      cacheFile: join(dir, 'missing', 'cache.json'),
      refreshMs: 0,
      logger: quiet,
    }).catch((e: unknown) => e);
    expect((error as Error).message).toBe('The developer platform refused the environment credentials (HTTP 401)');
    expect(platform.requests).toHaveLength(1);
    // Nothing was created for the cache either.
    expect(await stat(join(dir, 'missing')).then(() => 'exists', () => 'gone')).toBe('gone');
  });
});

describe('consoleLogger', () => {
  const capture = (run: (logger: Logger) => void): string[] => {
    const lines: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      run(consoleLogger({ level: 'debug' }));
    } finally {
      spy.mockRestore();
    }
    return lines;
  };

  it('never lets a field overwrite time, level or message: the field is kept as field.<name>', () => {
    const [line] = capture((logger) => logger.warn('disk almost full', { message: 'from a field', level: 'debug', time: 'bogus', disk: '/var' }));
    const entry = JSON.parse(line ?? '') as Record<string, unknown>;
    expect(entry).toEqual({
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      level: 'warn',
      message: 'disk almost full',
      'field.message': 'from a field',
      'field.level': 'debug',
      'field.time': 'bogus',
      disk: '/var',
    });
    expect(Object.keys(entry).slice(0, 3)).toEqual(['time', 'level', 'message']);
  });

  it('a field named toJSON cannot replace the line (it is kept as field.toJSON, not called)', () => {
    const [line] = capture((logger) => logger.error('boom', { toJSON: () => ({ level: 'debug' }), code: 'E1' }));
    const entry = JSON.parse(line ?? '') as Record<string, unknown>;
    expect(entry).toMatchObject({ level: 'error', message: 'boom', code: 'E1' });
    expect(entry.time).toEqual(expect.stringMatching(/^\d{4}-/));
  });

  it('writes a BigInt as a string, and a line saying so for fields that cannot be serialised: no entry is dropped', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const lines = capture((logger) => {
      logger.info('big', { count: 10n, nested: { ids: [1n, 2n] } });
      logger.error('cycle', { cyclic });
      logger.warn('throws', {
        odd: {
          toJSON() {
            throw new Error(`serialiser broke on ${TENANT_KEY}`);
          },
        },
      });
    });
    expect(lines).toHaveLength(3);
    const [big, cycle, throws] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(big).toMatchObject({ level: 'info', message: 'big', count: '10', nested: { ids: ['1', '2'] } });
    expect(cycle).toMatchObject({ level: 'error', message: 'cycle', logError: 'the fields of this entry could not be serialised (TypeError)' });
    expect(throws).toMatchObject({ level: 'warn', message: 'throws', logError: 'the fields of this entry could not be serialised (Error)' });
    expect(lines.join('')).not.toContain(TENANT_KEY);
  });
});

describe('createMaestrano given a promise (a missing await)', () => {
  it('says to await tenants and storage, instead of asking for the tenantsFromFile it was given', async () => {
    const file = join(dir, 'await.json');
    await writeFile(file, documentOf(marketplace('acme')));
    const { tenantsFromFile } = await import('@org/maestrano-sdk');
    const pendingTenants = tenantsFromFile(file);
    const pendingStorage = Promise.resolve(memoryAdapter());
    const error = configError(() => createMaestrano(config({ tenants: pendingTenants, storage: pendingStorage })));
    expect(error.issues).toEqual([
      { path: 'tenants', message: expect.stringMatching(/^is a Promise: await it first/) },
      { path: 'storage', message: expect.stringMatching(/^is a Promise: await/) },
    ]);
    await pendingTenants;
    // Not a promise: the usual messages.
    expect(configError(() => createMaestrano(config({ tenants: {}, storage: {} }))).issues.map((i) => i.message)).toEqual([
      expect.stringMatching(/^must be a tenant registry/),
      expect.stringMatching(/^must be a StorageAdapter/),
    ]);
  });
});

describe('createMaestrano given an adapter written for an earlier storage contract', () => {
  it('names every method it lacks, with the adapter id', () => {
    const memory = memoryAdapter();
    const { clearError: _clearError, ...idMaps } = memory.idMaps;
    const { seats: _seats, ...users } = memory.users;
    // Written before dead letters could be discarded.
    const { discard: _discard, ...jobs } = memory.jobs;
    const older = { ...memory, id: 'acme-storage', idMaps, users, jobs, locks: undefined };
    const error = configError(() => createMaestrano(config({ storage: older })));
    expect(error.issues).toEqual([
      {
        path: 'storage',
        message:
          'must be a StorageAdapter: the adapter "acme-storage" lacks users.seats, idMaps.clearError, jobs.discard, locks (written for an earlier storage contract? update the adapter package, or implement them: see STORAGE.md)',
      },
    ]);
  });
});
