// Two marketplaces served as `/index.php?route=maestrano/init` and `…&marketplace=acme` (a PHP
// front controller): a request naming a marketplace that is not configured (a stale link after a
// rename, a typo) answers 404 unknown_tenant. It matches the first route as a subset of its
// query, and was started as a login of that OTHER marketplace.
import { createMaestrano, memoryAdapter, parseMarketplacesDocument, staticTenants } from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { expect, it } from 'vitest';

const { certificate } = createTestCertificate({ bits: 1024 });
const marketplace = (name: string, init: string, consume: string) => ({
  marketplace: name,
  app: { host: 'https://app.example.com' },
  api: { id: `app-${name}`, key: `key-${name}`, host: 'https://api-hub.example.com' },
  sso: { x509_certificate: certificate, init_path: init, consume_path: consume, idp: `https://idp-${name}.example.com` },
});

/** Two marketplaces behind one front controller: `?route=…` and `?route=…&marketplace=acme`. */
function frontController() {
  const doc = {
    marketplaces: [
      marketplace('maestrano', '/index.php?route=maestrano/init', '/index.php?route=maestrano/consume'),
      marketplace('acme', '/index.php?route=maestrano/init&marketplace=acme', '/index.php?route=maestrano/consume&marketplace=acme'),
    ],
  };
  return createMaestrano({
    tenants: staticTenants(parseMarketplacesDocument(doc, 'maestrano.json')),
    storage: memoryAdapter(),
    provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
    onLogin: () => new Response('ok'),
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
}

it('a request naming an unknown marketplace on a query path is not served as another marketplace', async () => {
  const mno = frontController();
  const stale = await mno.handler(new Request('https://app.example.com/index.php?route=maestrano/init&marketplace=acme-old'));
  expect({ status: stale.status, location: stale.headers.get('location')?.slice(0, 40) ?? null }).toMatchObject({ status: 404 });
});

it('the shorter route still serves requests naming its own marketplace, or none', async () => {
  const mno = frontController();
  const idp = async (path: string) => new URL((await mno.handler(new Request(`https://app.example.com${path}`))).headers.get('location') ?? 'none:').host;
  expect(await idp('/index.php?route=maestrano/init')).toBe('idp-maestrano.example.com');
  expect(await idp('/index.php?route=maestrano/init&marketplace=maestrano')).toBe('idp-maestrano.example.com');
  expect(await idp('/index.php?route=maestrano/init&marketplace=acme')).toBe('idp-acme.example.com');
});
