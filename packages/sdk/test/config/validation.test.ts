import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  createMaestrano,
  type Logger,
  type MaestranoConfigInput,
  type MarketplaceInput,
  memoryAdapter,
  parseMarketplacesDocument,
  resolveTenants,
  tenantsFromDevPlatform,
  tenantsFromFile,
} from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configError } from './helpers.js';

const { certificate } = createTestCertificate({ bits: 1024 });

const marketplace = (overrides: Record<string, unknown> = {}): MarketplaceInput =>
  ({
    marketplace: 'acme',
    app: { host: 'https://app.example.com' },
    api: { id: 'app-1', key: 'very-secret-key', host: 'https://hub.example.co' },
    sso: { x509_certificate: certificate },
    ...overrides,
  }) as MarketplaceInput;

const config = (overrides: Record<string, unknown> = {}): MaestranoConfigInput =>
  ({
    tenants: [marketplace()],
    storage: memoryAdapter(),
    provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
    onLogin: () => new Response('ok'),
    ...overrides,
  }) as MaestranoConfigInput;


let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mno-validation-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('host and path settings are validated', () => {
  it('refuses sso.idm without a scheme (it broke every SAML consume and initUrl later)', () => {
    const e = configError(() => createMaestrano(config({ tenants: [marketplace({ sso: { x509_certificate: certificate, idm: 'a.io' } })] })));
    expect(e.issues).toEqual([{ path: 'tenants[0].sso.idm', message: 'must be an http(s) URL (or empty for app.host)' }]);
  });

  it('refuses app hosts with a query, a fragment, credentials or a path, and API hosts with a query or credentials', () => {
    // Paths are appended to hosts as text: `https://app.example.com/?x=1` made the ACS
    // `https://app.example.com/?x=1/maestrano/auth/saml/consume/...`.
    const cases: [Record<string, unknown>, string, string][] = [
      [{ app: { host: 'https://app.example.com/?x=1' } }, 'app.host', 'must not have a query or fragment'],
      [{ app: { host: 'https://app.example.com/#top' } }, 'app.host', 'must not have a query or fragment'],
      [{ app: { host: 'https://me:pw@app.example.com' } }, 'app.host', 'must not carry credentials'],
      [{ app: { host: 'https://app.example.com/myapp' } }, 'app.host', 'must be an origin such as https://app.example.com, without a path (the routes are served from the root)'],
      [{ sso: { x509_certificate: certificate, idm: 'https://sso.example.com/base' } }, 'sso.idm', 'must be an origin such as https://app.example.com, without a path (the routes are served from the root) (or empty for app.host)'],
      [{ api: { id: 'app-1', key: 'very-secret-key', host: 'https://hub.example.com?env=uat' } }, 'api.host', 'must not have a query or fragment'],
      [{ connec: { host: 'https://u:p@connec.example.com' } }, 'connec.host', 'must not carry credentials'],
    ];
    for (const [override, path, message] of cases) {
      const e = configError(() => createMaestrano(config({ tenants: [marketplace({ sso: { x509_certificate: certificate }, ...override })] })));
      expect(e.issues, JSON.stringify(override)).toEqual([{ path: `tenants[0].${path}`, message }]);
      expect(e.message).not.toContain('pw@');
    }
    // A trailing slash is still an origin.
    const [slash] = resolveTenants([marketplace({ sso: { x509_certificate: certificate }, app: { host: 'https://app.example.com/' } })]);
    expect(slash?.app.host).toBe('https://app.example.com');
  });

  it('keeps sso.idm "" meaning app.host, and accepts an idm URL', () => {
    const [empty] = resolveTenants([marketplace({ sso: { x509_certificate: certificate, idm: '' } })]);
    expect(empty?.sso.idm).toBe('https://app.example.com');
    const [own] = resolveTenants([marketplace({ sso: { x509_certificate: certificate, idm: 'https://sso.example.com/' } })]);
    expect(own?.sso.idm).toBe('https://sso.example.com');
  });

  it('refuses api.base without a leading slash (it was glued onto the IdP host, session token included)', () => {
    const e = configError(() => resolveTenants([marketplace({ api: { id: 'a', key: 'k', host: 'https://hub.example.co', base: 'm/api/v1/' } })]));
    expect(e.issues).toEqual([{ path: 'tenants[0].api.base', message: 'must be an absolute path' }]);
    const [ok] = resolveTenants([marketplace({ api: { id: 'a', key: 'k', host: 'https://hub.example.co', base: '/m/api/v1' } })]);
    expect(ok?.api.base).toBe('/m/api/v1/');
  });

  it('refuses connec.base_path without a leading slash', () => {
    const e = configError(() => resolveTenants([marketplace({ connec: { base_path: 'api/v2' } })]));
    expect(e.issues).toEqual([{ path: 'tenants[0].connec.base_path', message: 'must be an absolute path' }]);
  });
});

describe('whitespace and control characters in hosts and paths', () => {
  const withHost = (key: string, value: string): Record<string, unknown> => {
    switch (key) {
      case 'app.host':
        return { app: { host: value } };
      case 'api.host':
        return { api: { id: 'app-1', key: 'very-secret-key', host: value } };
      case 'connec.host':
        return { connec: { host: value } };
      default:
        return { sso: { x509_certificate: certificate, [key.slice('sso.'.length)]: value } };
    }
  };
  const hostKeys = ['app.host', 'api.host', 'sso.idp', 'sso.idm', 'connec.host'];

  it('trims surrounding whitespace (a CRLF file, a YAML block scalar) on every host key', () => {
    // The raw value was kept: SSO init answered 500 and the ACS URL carried the newline.
    for (const padding of [' ', '\n', '\r\n', '\t', ' \n ']) {
      const [tenant] = resolveTenants([
        marketplace({
          app: { host: `${padding}https://app.example.com${padding}` },
          api: { id: 'app-1', key: 'very-secret-key', host: `https://hub.example.co/${padding}` },
          sso: { x509_certificate: certificate, idp: `https://idp.example.co${padding}`, idm: `https://sso.example.com${padding}` },
          connec: { host: `https://connec.example.co${padding}` },
        }),
      ]);
      expect(tenant?.app.host, JSON.stringify(padding)).toBe('https://app.example.com');
      expect(tenant?.api.host).toBe('https://hub.example.co');
      expect(tenant?.sso.idp).toBe('https://idp.example.co');
      expect(tenant?.sso.idm).toBe('https://sso.example.com');
      expect(tenant?.connec.host).toBe('https://connec.example.co');
    }
    // Only whitespace in sso.idm is empty: app.host.
    const [blankIdm] = resolveTenants([marketplace({ sso: { x509_certificate: certificate, idm: ' \n' } })]);
    expect(blankIdm?.sso.idm).toBe('https://app.example.com');
  });

  it('refuses whitespace or a control character inside a host, naming the key and never the value', () => {
    const values = ['https://app.exa\nmple.com', 'https://app.example.com/\u0000', 'https://app.example.com\u200b', 'https://app.example.com/a\tb'];
    for (const key of hostKeys) {
      for (const value of values) {
        const e = configError(() => resolveTenants([marketplace(withHost(key, value))]));
        const message = key === 'sso.idm' ? 'must not contain whitespace or control characters (or empty for app.host)' : 'must not contain whitespace or control characters';
        expect(e.issues, `${key} ${JSON.stringify(value)}`).toEqual([{ path: `tenants[0].${key}`, message }]);
        expect(e.message).not.toContain('example.com');
      }
    }
  });

  it('trims surrounding whitespace of paths and refuses whitespace or control characters inside them', () => {
    const [tenant] = resolveTenants([
      marketplace({
        api: { id: 'a', key: 'k', host: 'https://hub.example.co', base: '/m/api/v1\r\n' },
        sso: { x509_certificate: certificate, init_path: ' /sso/init\n' },
        connec: { base_path: '/api/v2 ' },
      }),
    ]);
    expect(tenant?.api.base).toBe('/m/api/v1/');
    expect(tenant?.sso.initPath).toBe('/sso/init');
    expect(tenant?.connec.basePath).toBe('/api/v2');
    const e = configError(() => resolveTenants([marketplace({ sso: { x509_certificate: certificate, consume_path: '/sso/con\u0000sume' } })]));
    expect(e.issues).toEqual([{ path: 'tenants[0].sso.consume_path', message: 'must be an absolute path' }]);
  });
});

describe('api.base and connec.base_path follow the Connec! client basePath rule', () => {
  const RULE = 'must be a path of segments made of letters, digits and - . _ ~ (no query, fragment or other character)';
  const withBase = (key: 'api.base' | 'connec.base_path', value: string) =>
    key === 'api.base' ? marketplace({ api: { id: 'a', key: 'k', host: 'https://hub.example.co', base: value } }) : marketplace({ connec: { base_path: value } });

  it('refuses a query, a fragment or a character the client refuses, naming the key (not at the first call)', () => {
    // '/api/v2:beta' was accepted, then every Connec! call of the tenant threw ClientConfigError;
    // '/api/v1?x=1' put the query in the middle of every Account API URL.
    for (const key of ['api.base', 'connec.base_path'] as const) {
      for (const value of ['/api/v2:beta', '/api/v1?x=1', '/api/v1#top', '/api//v1', '/api/%41', '/api/v1;x']) {
        const e = configError(() => createMaestrano(config({ tenants: [withBase(key, value)] })));
        expect(e.issues, `${key} ${value}`).toEqual([{ path: `tenants[0].${key}`, message: RULE }]);
      }
    }
  });

  it('accepts the paths the client accepts', () => {
    for (const value of ['/', '/api/v2', '/api/v2/', '/m/api_v1.2~x-y']) {
      const [api] = resolveTenants([withBase('api.base', value)]);
      expect(api?.api.base).toBe(value.endsWith('/') ? value : `${value}/`);
      const mno = createMaestrano(config({ tenants: [withBase('connec.base_path', value)], logger: { debug() {}, info() {}, warn() {}, error() {} } }));
      expect(mno.tenants.get('acme')?.connec.basePath).toBe(value);
      expect(() => mno.connec('acme', 'cld-1')).not.toThrow();
    }
  });
});

describe('marketplaces documents are strict', () => {
  const misspelt = () => ({
    marketplaces: [marketplace({ sso: { x509_certificate: certificate, creation_mod: 'virtual', consume_pth: '/sso/consume', slo_enabld: false } })],
  });

  it('tenantsFromFile refuses a misspelt key with a ConfigError naming it (it loaded as real mode)', async () => {
    const file = join(dir, 'misspelt.json');
    await writeFile(file, JSON.stringify(misspelt()));
    const error = await tenantsFromFile(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([
      { path: 'marketplaces[0].sso', message: 'unknown key(s) "creation_mod" (did you mean "creation_mode"?), "consume_pth" (did you mean "consume_path"?), "slo_enabld" (did you mean "slo_enabled"?)' },
    ]);
  });

  it('parseMarketplacesDocument refuses unknown keys at every level, the document itself included', () => {
    expect(configError(() => parseMarketplacesDocument(misspelt(), 'secrets')).issues[0]?.path).toBe('marketplaces[0].sso');
    const top = configError(() => parseMarketplacesDocument({ marketplaces: [marketplace()], marketplace: [] }, 'secrets'));
    expect(top.issues).toEqual([{ path: '(root)', message: 'unknown key(s) "marketplace" (did you mean "marketplaces"?)' }]);
    const nested = configError(() => parseMarketplacesDocument({ marketplaces: [marketplace({ webhooks: { account: { group_pth: '/g' } } })] }, 'secrets'));
    expect(nested.issues).toEqual([{ path: 'marketplaces[0].webhooks.account', message: 'unknown key(s) "group_pth" (did you mean "group_path"?)' }]);
  });

  it('allowUnknownKeys ignores unknown keys and logs their paths, never their values; invalid known keys still fail', () => {
    const warnings: { message: string; fields: Record<string, unknown> | undefined }[] = [];
    const logger: Logger = { debug() {}, info() {}, warn: (message, fields) => warnings.push({ message, fields }), error() {} };
    const doc = { marketplaces: [marketplace({ future_field: 'top-secret-value' })] };
    const tenants = parseMarketplacesDocument(doc, 'platform', { allowUnknownKeys: true, logger });
    expect(tenants.map((t) => t.name)).toEqual(['acme']);
    expect(warnings).toEqual([
      { message: 'maestrano: ignoring unknown keys in the marketplaces document', fields: { source: 'platform', paths: ['marketplaces[0].future_field'] } },
    ]);
    expect(JSON.stringify(warnings)).not.toContain('top-secret-value');
    const bad = { marketplaces: [marketplace({ future_field: 1, connec: { timeout: '300' } })] };
    const e = configError(() => parseMarketplacesDocument(bad, 'platform', { allowUnknownKeys: true, logger }));
    expect(e.issues).toEqual([{ path: 'marketplaces[0].connec.timeout', message: 'expected number, received string' }]);
  });

  it('tenantsFromDevPlatform stays tolerant of fields the platform adds, with a warning', async () => {
    const warnings: string[] = [];
    const logger: Logger = { debug() {}, info() {}, warn: (m) => warnings.push(m), error() {} };
    const platformFetch = (async () => Response.json({ marketplaces: [marketplace({ some_future_field: { x: 1 } })] })) as typeof fetch;
    const tenants = await tenantsFromDevPlatform({ host: 'https://platform.test', key: 'k', secret: 's', refreshMs: 0, fetch: platformFetch, logger });
    try {
      expect(tenants.list().map((t) => t.name)).toEqual(['acme']);
      expect(warnings).toEqual(['maestrano: ignoring unknown keys in the marketplaces document']);
    } finally {
      tenants.close();
    }
  });
});

describe('config error messages', () => {
  it('tells a wrong type (naming the received type) from a missing key', () => {
    expect(configError(() => resolveTenants([marketplace({ connec: { timeout: '300' } })])).issues).toEqual([
      { path: 'tenants[0].connec.timeout', message: 'expected number, received string' },
    ]);
    expect(configError(() => resolveTenants([marketplace({ sso: { x509_certificate: certificate, enabled: 'false' } })])).issues).toEqual([
      { path: 'tenants[0].sso.enabled', message: 'expected boolean, received string' },
    ]);
    expect(configError(() => createMaestrano(config({ sso: { clockSkewMs: '5000' } }))).issues).toEqual([
      { path: 'sso.clockSkewMs', message: 'expected number, received string' },
    ]);
    expect(configError(() => resolveTenants([marketplace({ api: { id: 'a', host: 'https://h.io' } })])).issues).toEqual([
      { path: 'tenants[0].api.key', message: 'required (expected string)' },
    ]);
    expect(configError(() => resolveTenants([marketplace({ connec: { timeout: null, host: [] } })])).issues).toEqual([
      { path: 'tenants[0].connec.host', message: 'expected string, received array' },
    ]);
  });

  it('never echoes a received value, even of the wrong type', () => {
    const e = configError(() => resolveTenants([marketplace({ api: { id: 'a', key: 987654321, host: 'https://h.io' } })]));
    expect(e.issues).toEqual([{ path: 'tenants[0].api.key', message: 'expected string, received number' }]);
    expect(e.message).not.toContain('987654321');
    const secret = configError(() => createMaestrano(config({ sso: { requestBinding: { secret: 'short-secret-value' } } })));
    expect(secret.issues).toEqual([{ path: 'sso.requestBinding.secret', message: 'sso.requestBinding.secret must be at least 32 characters' }]);
    expect(secret.message).not.toContain('short-secret-value');
  });

  it("keeps a schema's own message instead of the generic format wording", () => {
    expect(configError(() => resolveTenants([marketplace({ marketplace: 'bad name/x' })])).issues).toEqual([
      { path: 'tenants[0].marketplace', message: 'must be a marketplace key (letters, digits, . _ ~ -)' },
    ]);
    expect(configError(() => resolveTenants([marketplace({ api: { id: 'a', key: '', host: 'https://h.io' } })])).issues).toEqual([
      { path: 'tenants[0].api.key', message: 'api.key must not be empty' },
    ]);
    expect(configError(() => createMaestrano(config({ sso: { requestBinding: { cookieName: 'bad name' } } }))).issues).toEqual([
      { path: 'sso.requestBinding.cookieName', message: 'must match /^[A-Za-z0-9_-]{1,64}$/' },
    ]);
  });
});
