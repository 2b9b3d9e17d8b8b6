import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, type Logger, tenantsFromDevPlatform, tenantsFromFile } from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const { certificate, fingerprint } = createTestCertificate({ bits: 1024 });

/** The dev-platform answer shape of PROTOCOL §1.4 (with the `\n`-escaped PEM of real payloads). */
const marketplace = (name: string, extra: Record<string, unknown> = {}) => ({
  nid: `demo-${name}`,
  marketplace: name,
  environment: 'demo-env',
  app: { host: 'https://app.example.com', synchronization_start_path: `/maestrano/${name}/synchronizations` },
  api: { id: `app-${name}`, key: `key-${name}`, host: 'https://api-hub-uat.maestrano.io', base: '/api/v1/' },
  sso: {
    idm: '',
    init_path: `/maestrano/auth/saml/init/${name}`,
    consume_path: `/maestrano/auth/saml/consume/${name}`,
    idp: 'https://api-hub-uat.maestrano.io',
    x509_fingerprint: fingerprint,
    x509_certificate: certificate,
  },
  connec: { host: 'https://api-connec-uat.maestrano.io', base_path: '/api/v2', timeout: 300 },
  webhooks: {
    account: {
      group_path: `/maestrano/account/groups/:id/${name}`,
      group_user_path: `/maestrano/account/groups/:group_id/users/:id/${name}`,
    },
    connec: { external_ids: true, initialization_path: null, notification_path: `/maestrano/connec/notifications/${name}` },
  },
  ...extra,
});
/** What the live platform may serve: a field this SDK does not know yet (ignored there, with a warning). */
const platformMarketplace = (name: string) => marketplace(name, { some_future_field: { ignored: true } });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mno-tenants-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('tenantsFromFile', () => {
  it('loads a dev-platform marketplaces document', async () => {
    const file = join(dir, 'maestrano.json');
    await writeFile(file, JSON.stringify({ marketplaces: [marketplace('maestrano-uat'), marketplace('acme')] }));
    const tenants = await tenantsFromFile(file);
    expect(tenants.list().map((t) => t.name)).toEqual(['maestrano-uat', 'acme']);
    const uat = tenants.get('maestrano-uat')!;
    expect(uat.sso.idm).toBe('https://app.example.com');
    expect(uat.connec).toEqual({
      enabled: true,
      host: 'https://api-connec-uat.maestrano.io',
      basePath: '/api/v2',
      timeoutMs: 300_000,
      externalIds: true,
    });
    expect(uat.nid).toBe('demo-maestrano-uat');
  });

  it('refuses a missing file, invalid JSON and an invalid document with a ConfigError naming the problem', async () => {
    await expect(tenantsFromFile(join(dir, 'missing.json'))).rejects.toThrow(ConfigError);
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '{not json');
    await expect(tenantsFromFile(bad)).rejects.toThrow(/not valid JSON/);
    const invalid = join(dir, 'invalid.json');
    await writeFile(invalid, JSON.stringify({ marketplaces: [{ ...marketplace('x'), api: { id: 'a', host: 'https://h' } }] }));
    const error = await tenantsFromFile(invalid).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([{ path: 'marketplaces[0].api.key', message: 'required (expected string)' }]);
    // A file saved from a refused request (a test's or a deploy script's unchecked fetch).
    const refused = join(dir, 'refused.json');
    await writeFile(refused, '{"error":"Could not authenticate"}');
    await expect(tenantsFromFile(refused)).rejects.toThrow(
      new ConfigError(`${refused} holds the developer platform's error answer ("Could not authenticate"), not a marketplaces document: fetch it again with the environment's API key and secret`),
    );
  });
});

describe('tenantsFromDevPlatform against a loopback platform', () => {
  const requests: { url: string; auth: string | undefined }[] = [];
  let mode: 'ok' | 'unauthorized' | 'error-body' = 'ok';
  let names = ['maestrano-uat'];
  const platform = createServer((req: IncomingMessage, res) => {
    requests.push({ url: req.url ?? '', auth: req.headers.authorization });
    res.setHeader('content-type', 'application/json');
    if (mode === 'unauthorized') {
      res.statusCode = 401;
      res.end('{"error":"Could not authenticate"}');
    } else if (mode === 'error-body') {
      res.end('{"error":"environment disabled"}');
    } else {
      res.end(JSON.stringify({ marketplaces: names.map((n) => platformMarketplace(n)) }));
    }
  });
  let host: string;
  beforeAll(async () => {
    await new Promise<void>((resolve) => platform.listen(0, '127.0.0.1', resolve));
    host = `http://127.0.0.1:${(platform.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => platform.close(() => resolve()));
  });

  it('downloads with Basic auth, caches to disk (0600) and refreshes', async () => {
    mode = 'ok';
    names = ['maestrano-uat'];
    requests.length = 0;
    const cacheFile = join(dir, 'cache', 'marketplaces.json');
    const tenants = await tenantsFromDevPlatform({ host, apiPath: '/api/config/v1/', key: 'env-key', secret: 'env-secret', cacheFile, refreshMs: 0 });
    try {
      expect(requests).toEqual([
        { url: '/api/config/v1/marketplaces', auth: `Basic ${Buffer.from('env-key:env-secret').toString('base64')}` },
      ]);
      expect(tenants.source).toBe('platform');
      expect(tenants.list().map((t) => t.name)).toEqual(['maestrano-uat']);
      expect(JSON.parse(await readFile(cacheFile, 'utf8')).marketplaces).toHaveLength(1);
      expect((await stat(cacheFile)).mode & 0o777).toBe(0o600);

      names = ['maestrano-uat', 'acme'];
      await tenants.refresh();
      expect(tenants.list().map((t) => t.name)).toEqual(['maestrano-uat', 'acme']);

      // A failing refresh keeps the current tenants.
      mode = 'unauthorized';
      await expect(tenants.refresh()).rejects.toThrow(/refused the environment credentials/);
      expect(tenants.get('acme')).toBeDefined();
    } finally {
      tenants.close();
    }
  });

  it('uses the stale cache with a warning when the platform fails, and fails without a cache', async () => {
    const cacheFile = join(dir, 'stale.json');
    await writeFile(cacheFile, JSON.stringify({ marketplaces: [platformMarketplace('from-cache')] }));
    const warnings: string[] = [];
    const logger: Logger = { debug() {}, info() {}, warn: (m) => warnings.push(m), error() {} };
    mode = 'unauthorized';
    const fromCache = await tenantsFromDevPlatform({ host, key: 'k', secret: 's', cacheFile, refreshMs: 0, logger });
    expect(fromCache.source).toBe('cache');
    expect(fromCache.list().map((t) => t.name)).toEqual(['from-cache']);
    expect(warnings).toEqual(['maestrano: developer platform unavailable, using the cached tenants (possibly stale)']);

    const unreachable = await tenantsFromDevPlatform({ host: 'http://127.0.0.1:9', key: 'k', secret: 's', cacheFile, refreshMs: 0, logger });
    expect(unreachable.source).toBe('cache');

    mode = 'error-body';
    await expect(tenantsFromDevPlatform({ host, key: 'k', secret: 's', refreshMs: 0 })).rejects.toThrow(/holds the developer platform's error answer \("environment disabled"\), not a marketplaces document/);
    await expect(tenantsFromDevPlatform({ host: 'http://127.0.0.1:9', key: 'k', secret: 's', refreshMs: 0 })).rejects.toThrow(ConfigError);
  });

  it('without a logger, logs the cache fallback and unknown keys on stderr (JSON lines, no secrets)', async () => {
    const cacheFile = join(dir, 'stale-default-logger.json');
    await writeFile(cacheFile, JSON.stringify({ marketplaces: [platformMarketplace('from-cache')] }));
    const lines: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      mode = 'unauthorized';
      const fromCache = await tenantsFromDevPlatform({ host, key: 'env-key-1', secret: 'env-secret-1', cacheFile, refreshMs: 0 });
      expect(fromCache.source).toBe('cache');
      mode = 'ok';
      names = ['maestrano-uat'];
      const live = await tenantsFromDevPlatform({ host, key: 'env-key-1', secret: 'env-secret-1', refreshMs: 0 });
      expect(live.source).toBe('platform');
    } finally {
      spy.mockRestore();
    }
    const entries = lines.map((l) => JSON.parse(l) as { level: string; message: string; file?: string; reason?: string; paths?: string[] });
    expect(entries).toEqual([
      expect.objectContaining({
        level: 'warn',
        message: 'maestrano: developer platform unavailable, using the cached tenants (possibly stale)',
        file: cacheFile,
        reason: expect.stringMatching(/refused the environment credentials/),
      }),
      expect.objectContaining({ level: 'warn', message: 'maestrano: ignoring unknown keys in the marketplaces document', paths: [expect.stringContaining('some_future_field')] }),
    ]);
    const all = lines.join('');
    for (const secret of ['env-key-1', 'env-secret-1', Buffer.from('env-key-1:env-secret-1').toString('base64'), 'key-maestrano-uat', 'key-from-cache']) {
      expect(all).not.toContain(secret);
    }
  });
});
