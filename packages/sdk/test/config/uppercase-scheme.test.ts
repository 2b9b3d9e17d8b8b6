/**
 * A URL's scheme is case-insensitive (RFC 3986 §3.1; WHATWG URL lower-cases it):
 * `HTTPS://app.example.com` is an https URL. It used to be refused as "must be an http(s)
 * URL", a message that is false for it. Accepted now, and stored with the scheme lower-cased
 * (the SDK tells https hosts by their `https:` prefix, e.g. for the Secure cookie of SSO).
 */
import { configFromEnv, parseMarketplacesDocument, tenantsFromDevPlatform } from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { expect, it } from 'vitest';
import { startPlatform } from './helpers.js';

const { fingerprint } = createTestCertificate({ bits: 1024 });
const marketplace = {
  marketplace: 'acme',
  app: { host: 'HTTPS://App.Example.com/' },
  api: { id: 'app-acme', key: 'key-acme', host: 'Https://api-hub.example.com' },
  sso: { x509_fingerprint: fingerprint, idm: 'HTTPS://idm.example.com', idp: 'HTTP://[::1]:3001' },
  connec: { host: 'HTTPS://api-connec.example.com' },
};

it('reads hosts with an upper-case scheme as the http(s) URLs they are', () => {
  const [tenant] = parseMarketplacesDocument({ marketplaces: [marketplace] }, 'test');
  expect(tenant!.app.host).toBe('https://App.Example.com');
  expect(tenant!.api.host).toBe('https://api-hub.example.com');
  expect(tenant!.sso.idm).toBe('https://idm.example.com');
  expect(tenant!.sso.idp).toBe('http://[::1]:3001');
  expect(tenant!.connec.host).toBe('https://api-connec.example.com');
});

it('configFromEnv and tenantsFromDevPlatform accept a platform host with an upper-case scheme', async () => {
  const platform = await startPlatform((_n, _req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ marketplaces: [marketplace] }));
  });
  try {
    const host = platform.host.replace('http://', 'HTTP://');
    const options = configFromEnv({ MNO_DEVPL_HOST: host, MNO_DEVPL_ENV_KEY: 'k', MNO_DEVPL_ENV_SECRET: 's' });
    const tenants = await tenantsFromDevPlatform({ ...options, refreshMs: 0 });
    expect(tenants.list().map((t) => t.name)).toEqual(['acme']);
    expect(platform.requests.map((r) => r.url)).toEqual(['/api/config/v1/marketplaces']);
    tenants.close();
  } finally {
    await platform.close();
  }
});

it('still refuses what is not an http(s) URL, naming the key', () => {
  expect(() => parseMarketplacesDocument({ marketplaces: [{ ...marketplace, app: { host: 'FTP://app.example.com' } }] }, 'test')).toThrow(
    /marketplaces\[0\]\.app\.host: must be an http\(s\) URL/,
  );
});
