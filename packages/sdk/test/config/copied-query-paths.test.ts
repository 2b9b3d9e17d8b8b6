// A marketplace block copied from another one whose paths carry the marketplace as a query
// (`?marketplace=<name>`, one of the two forms the developer platform uses, PROTOCOL §1.4) is
// refused like the suffix form ("a path ending with another marketplace's name"): accepted, both
// tenants would serve `…?marketplace=maestrano-uat` and the original marketplace's own SSO init
// and consume would answer 404 ambiguous_tenant. Any route identical (method, shape and query)
// to another marketplace's route of the same kind, where requests cannot be told apart, is.
import { ConfigError, createMaestrano, memoryAdapter, parseMarketplacesDocument, staticTenants } from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';

const { certificate } = createTestCertificate({ bits: 1024 });
const marketplace = (name: string, sso: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  marketplace: name,
  app: { host: 'https://app.example.com' },
  api: { id: `app-${name}`, key: `key-${name}`, host: 'https://api-hub.example.com' },
  sso: { x509_certificate: certificate, ...sso },
  ...extra,
});
const problems = (...marketplaces: unknown[]): { path: string; message: string }[] => {
  try {
    parseMarketplacesDocument({ marketplaces }, 'maestrano.json');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues.map(({ path, message }) => ({ path, message }));
  }
  return [];
};
const ssoPaths = (name: string) => ({
  init_path: `/maestrano/auth/saml/init?marketplace=${name}`,
  consume_path: `/maestrano/auth/saml/consume?marketplace=${name}`,
});

describe('a block copied from a marketplace whose SSO paths name it as ?marketplace=', () => {
  const uatPaths = ssoPaths('maestrano-uat');

  it('is refused like the suffix form, naming the copied keys (either order)', () => {
    const message = (key: string, path: string) =>
      `${path} is also the ${key} of marketplace "maestrano-uat": requests on it could not be told apart, and both marketplaces would answer them 404 ambiguous_tenant (a block copied from it? name this marketplace in the path, as in ?marketplace=acme)`;
    const expected = (i: number) => [
      { path: `marketplaces[${i}].sso.init_path`, message: message('sso.init_path', uatPaths.init_path) },
      { path: `marketplaces[${i}].sso.consume_path`, message: message('sso.consume_path', uatPaths.consume_path) },
    ];
    expect(problems(marketplace('maestrano-uat', uatPaths), marketplace('acme', uatPaths))).toEqual(expected(1));
    // The copy is the marketplace the query does not name, wherever it is listed.
    expect(problems(marketplace('acme', uatPaths), marketplace('maestrano-uat', uatPaths))).toEqual(expected(0));
  });

  it('is refused by createMaestrano too', () => {
    expect(() =>
      createMaestrano({
        tenants: [marketplace('maestrano-uat', uatPaths), marketplace('acme', uatPaths)],
        storage: memoryAdapter(),
        provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
        onLogin: () => new Response('ok'),
        logger: { debug() {}, info() {}, warn() {}, error() {} },
      }),
    ).toThrow(/tenants\[1\]\.sso\.init_path: .* is also the sso\.init_path of marketplace "maestrano-uat"/);
  });

  it('renamed, serves each marketplace its own SSO', async () => {
    const tenants = parseMarketplacesDocument({ marketplaces: [marketplace('maestrano-uat', uatPaths), marketplace('acme', ssoPaths('acme'))] }, 'maestrano.json');
    const mno = createMaestrano({
      tenants: staticTenants(tenants),
      storage: memoryAdapter(),
      provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
      onLogin: () => new Response('ok'),
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    for (const name of ['maestrano-uat', 'acme']) {
      const res = await mno.handler(new Request(`https://app.example.com/maestrano/auth/saml/init?marketplace=${name}`));
      expect(res.status).toBe(302);
    }
  });
});

describe('identical query paths elsewhere', () => {
  it('are refused on the later marketplace when the query names neither', () => {
    const paths = { init_path: '/sso/init?source=maestrano' };
    expect(problems(marketplace('one', paths), marketplace('two', paths)).map((p) => p.path)).toEqual(['marketplaces[1].sso.init_path']);
  });

  it('are fine for webhooks of marketplaces with their own credentials (the credentials pick the marketplace)', () => {
    const hooks = { webhooks: { account: { group_path: '/maestrano/account/groups/:id?marketplace=maestrano-uat' } } };
    expect(problems(marketplace('maestrano-uat', {}, hooks), marketplace('acme', {}, hooks))).toEqual([]);
  });

  it('are refused for webhooks of marketplaces that share their credentials (nothing tells them apart)', () => {
    const hooks = { webhooks: { account: { group_path: '/maestrano/account/groups/:group_id?marketplace=maestrano-uat' } } };
    const api = { id: 'app-shared', key: 'key-shared', host: 'https://api-hub.example.com' };
    const uat = { ...marketplace('maestrano-uat', {}, hooks), api };
    const acme = { ...marketplace('acme', {}, { webhooks: { account: { group_path: '/maestrano/account/groups/:id?marketplace=maestrano-uat' } } }), api };
    expect(problems(uat, acme).map((p) => p.path)).toEqual(['marketplaces[1].webhooks.account.group_path']);
  });

  it('are fine when they differ in the query, and tenant-less shared paths are left to the router (a warning)', () => {
    expect(problems(marketplace('maestrano-uat', ssoPaths('maestrano-uat')), marketplace('acme', ssoPaths('acme')))).toEqual([]);
    const bare = { init_path: '/maestrano/auth/saml/init', consume_path: '/maestrano/auth/saml/consume' };
    expect(problems(marketplace('one', bare), marketplace('two', bare))).toEqual([]);
  });
});
