/**
 * `close()` promises that, once it returns, no refresh writes the cache file. A refresh whose
 * answer was applied just before close() (close() called while the refresh is between applying
 * the tenants and writing the cache: here from the logger line the refresh writes, which is the
 * same moment) must not write the file afterwards: a process shutting down, or a test removing
 * its directory, would otherwise find the file (and its directory, created again) rewritten.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DevPlatformTenants, type Logger, tenantsFromDevPlatform } from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type LoopbackPlatform, startPlatform } from './helpers.js';

const { fingerprint } = createTestCertificate({ bits: 1024 });
const marketplace = (name: string) => ({
  marketplace: name,
  app: { host: 'https://app.example.com' },
  api: { id: `app-${name}`, key: `key-${name}`, host: 'https://api-hub.example.com' },
  sso: { x509_fingerprint: fingerprint },
});

let names = ['alpha'];
let platform: LoopbackPlatform;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mno-devpl-close-'));
  platform = await startPlatform((_n, _req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ marketplaces: names.map(marketplace) }));
  });
});
afterAll(async () => {
  await platform.close();
  await rm(dir, { recursive: true, force: true });
});

it('a refresh applied right before close() does not write the cache file after close()', async () => {
  const cacheFile = join(dir, 'cache', 'marketplaces.json');
  let tenants: DevPlatformTenants | undefined;
  let closedAt: string | null = null;
  const noop = () => {};
  const logger: Logger = {
    debug: noop,
    warn: noop,
    error: noop,
    info: (message) => {
      if (message === 'maestrano: tenants refreshed' && tenants) {
        tenants.close();
        closedAt = tenants.list().map((t) => t.name).join(',');
      }
    },
  };
  tenants = await tenantsFromDevPlatform({ host: platform.host, key: 'k', secret: 's', cacheFile, refreshMs: 0, logger });
  const atStart = await readFile(cacheFile, 'utf8');
  expect(JSON.parse(atStart).marketplaces.map((m: { marketplace: string }) => m.marketplace)).toEqual(['alpha']);

  names = ['alpha', 'beta'];
  await tenants.refresh();
  expect(closedAt).toBe('alpha,beta');
  // Written after close() returned: the file must be what it was when close() was called.
  expect(await readFile(cacheFile, 'utf8')).toBe(atStart);
});
