// The router matches a route's query as a subset of the request's (every configured name=value
// must be present), so the route naming more query parameters is the more specific one. A
// marketplace whose path adds a parameter to another marketplace's query path (a PHP front
// controller, `/index.php?route=…`, with `&marketplace=<name>` for the second marketplace) is
// served: before, every request for it also matched the first route and answered 404
// ambiguous_tenant.
import { createMaestrano, memoryAdapter, parseMarketplacesDocument, staticTenants } from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { expect, it } from 'vitest';

const { certificate } = createTestCertificate({ bits: 1024 });
const marketplace = (name: string, init: string, consume: string) => ({
  marketplace: name,
  app: { host: 'https://app.example.com' },
  api: { id: `app-${name}`, key: `key-${name}`, host: 'https://api-hub.example.com' },
  sso: { x509_certificate: certificate, init_path: init, consume_path: consume },
});

it('a path whose query adds a parameter to another marketplace\'s query path is served, each marketplace its own', async () => {
  const doc = {
    marketplaces: [
      marketplace('maestrano', '/index.php?route=maestrano/init', '/index.php?route=maestrano/consume'),
      marketplace('acme', '/index.php?route=maestrano/init&marketplace=acme', '/index.php?route=maestrano/consume&marketplace=acme'),
    ],
  };
  const tenants = parseMarketplacesDocument(doc, 'maestrano.json');
  const mno = createMaestrano({
    tenants: staticTenants(tenants),
    storage: memoryAdapter(),
    provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
    onLogin: () => new Response('ok'),
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  const own = await mno.handler(new Request('https://app.example.com/index.php?route=maestrano/init'));
  const acme = await mno.handler(new Request('https://app.example.com/index.php?route=maestrano/init&marketplace=acme'));
  expect({ maestrano: own.status, acme: acme.status, acmeBody: acme.status === 302 ? null : await acme.json() }).toEqual({
    maestrano: 302,
    acme: 302,
    acmeBody: null,
  });
});
