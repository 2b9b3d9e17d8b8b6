import {
  ConfigError,
  configFromEnv,
  createMaestrano,
  type MaestranoConfigInput,
  type MarketplaceInput,
  memoryAdapter,
  redactingLogger,
  resolveTenants,
} from '@org/maestrano-sdk';
import { ClientConfigError } from '@org/connec-client';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';
import { redactFields } from '../../src/config/logger.js';
import { MAX_LOGGED_STRING } from '../../src/config/redact.js';
import { configError } from './helpers.js';

const { certificate, fingerprint } = createTestCertificate({ bits: 1024 });

const marketplace = (overrides: Partial<MarketplaceInput> = {}): MarketplaceInput => ({
  marketplace: 'maestrano-uat',
  app: { host: 'https://app.example.com' },
  api: { id: 'app-1', key: 'very-secret-key', host: 'https://api-hub-uat.maestrano.io' },
  sso: { x509_certificate: certificate },
  ...overrides,
});

const base = (): MaestranoConfigInput => ({
  tenants: [marketplace()],
  storage: memoryAdapter(),
  provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
  onLogin: () => new Response('ok'),
});


describe('createMaestrano configuration validation', () => {
  it('accepts a minimal configuration and resolves tenant defaults', () => {
    const mno = createMaestrano(base());
    const tenant = mno.tenants.get('maestrano-uat')!;
    expect(tenant.sso).toMatchObject({
      initPath: '/maestrano/auth/saml/init/maestrano-uat',
      consumePath: '/maestrano/auth/saml/consume/maestrano-uat',
      idm: 'https://app.example.com',
      idp: 'https://api-hub-uat.maestrano.io',
      creationMode: 'real',
      enabled: true,
      sloEnabled: true,
    });
    expect(tenant.api.base).toBe('/api/v1/');
    expect(tenant.webhooks.account.groupPath).toBe('/maestrano/account/groups/:id/maestrano-uat');
  });

  it('names an unknown (typo) key at every level', () => {
    expect(configError(() => createMaestrano({ ...base(), storag: 1 } as never)).issues).toContainEqual({
      path: '(root)',
      message: 'unknown key(s) "storag" (did you mean "storage"?)',
    });
    expect(configError(() => createMaestrano({ ...base(), sso: { clockSkew: 5 } } as never)).issues[0]?.path).toBe('sso');
    const e = configError(() => createMaestrano({ ...base(), tenants: [{ ...marketplace(), sso: { x509_certificate: certificate, consume_pth: '/x' } }] } as never));
    expect(e.issues[0]).toEqual({ path: 'tenants[0].sso', message: 'unknown key(s) "consume_pth" (did you mean "consume_path"?)' });
    // A key like none of the known ones is named alone; billing's sections suggest too.
    expect(configError(() => createMaestrano({ ...base(), conector: 1, frobnicate: 2 } as never)).issues).toContainEqual({
      path: '(root)',
      message: 'unknown key(s) "conector" (did you mean "connector"?), "frobnicate"',
    });
    expect(configError(() => createMaestrano({ ...base(), billing: { subscripton: {} } } as never)).issues).toContainEqual({
      path: 'billing',
      message: 'unknown key(s) "subscripton" (did you mean "subscription"?)',
    });
  });

  it('loads a Ruby/PHP-style marketplace carrying the legacy keys, which change nothing (TLS is verified whatever verify_ssl_certs says)', () => {
    for (const verify of [true, false]) {
      const legacy = marketplace({
        api: { id: 'app-1', key: 'very-secret-key', host: 'https://api-hub-uat.maestrano.io', verify_ssl_certs: verify, version: '1.0.0', lang: 'ruby', lang_version: '2.7.1 p83' },
        connec: { host: 'https://api-connec-uat.maestrano.io', v2_path: '/v2', reports_path: '/reports' },
      });
      const tenant = createMaestrano({ ...base(), tenants: [legacy] }).tenants.get('maestrano-uat')!;
      expect(tenant.api).toEqual(createMaestrano(base()).tenants.get('maestrano-uat')!.api);
      expect(tenant.connec.host).toBe('https://api-connec-uat.maestrano.io');
    }
    // Still typed: a wrong type is named, not ignored.
    const e = configError(() =>
      createMaestrano({ ...base(), tenants: [marketplace({ api: { id: 'app-1', key: 'very-secret-key', host: 'https://api-hub-uat.maestrano.io', verify_ssl_certs: 'no' as never } })] }),
    );
    expect(e.issues.map((i) => i.path)).toEqual(['tenants[0].api.verify_ssl_certs']);
  });

  it('is a ClientConfigError named ConfigError with the shared config_invalid code', () => {
    const e = configError(() => createMaestrano({ ...base(), storag: 1 } as never));
    expect(e).toBeInstanceOf(ClientConfigError);
    expect(e).toMatchObject({ name: 'ConfigError', code: 'config_invalid' });
    expect(new ConfigError('no issues').issues).toEqual([]);
  });

  it('names missing and mistyped keys', () => {
    const e = configError(() =>
      createMaestrano({ ...base(), provisioning: { createCompany: () => ({ id: 'c' }) }, limits: { maxBodyBytes: -1 } } as never),
    );
    expect(e.issues.map((i) => i.path).sort()).toEqual(['limits.maxBodyBytes', 'provisioning.createUser']);
    expect(e.message).toContain('provisioning.createUser');
  });

  it('never echoes a secret value in the error', () => {
    const secretish = 'sk_live_THIS_MUST_NOT_LEAK';
    const bad = [{ ...marketplace(), api: { id: 'app-1', key: 42, host: secretish } }];
    const e = configError(() => createMaestrano({ ...base(), tenants: bad } as never));
    expect(e.issues.map((i) => i.path).sort()).toEqual(['tenants[0].api.host', 'tenants[0].api.key']);
    expect(JSON.stringify(e.issues) + e.message).not.toContain(secretish);
    expect(e.message).not.toContain('42');

    const shortSecret = 'tooshort-secret';
    const e2 = configError(() => createMaestrano({ ...base(), sso: { requestBinding: { secret: shortSecret } } }));
    expect(e2.message).toContain('sso.requestBinding.secret');
    expect(e2.message).not.toContain(shortSecret);
  });

  it('requires a certificate (or fingerprint) when SSO is enabled, and refuses an invalid one', () => {
    expect(configError(() => createMaestrano({ ...base(), tenants: [marketplace({ sso: {} })] })).issues[0]?.path).toBe(
      'tenants[0].sso.x509_certificate',
    );
    expect(
      configError(() => createMaestrano({ ...base(), tenants: [marketplace({ sso: { x509_certificate: 'not a pem' } })] })).issues[0]?.message,
    ).toBe('not a valid PEM certificate');
    expect(
      configError(() => createMaestrano({ ...base(), tenants: [marketplace({ sso: { x509_fingerprint: 'zz:11' } })] })).issues[0]?.path,
    ).toBe('tenants[0].sso.x509_fingerprint');
    const viaFingerprint = createMaestrano({ ...base(), tenants: [marketplace({ sso: { x509_fingerprint: fingerprint.toUpperCase() } })] });
    expect(viaFingerprint.tenants.get('maestrano-uat')?.sso.x509Fingerprint).toBe(fingerprint);
    // `\n`-escaped PEM as found in JSON/YAML files is accepted.
    const escaped = createMaestrano({ ...base(), tenants: [marketplace({ sso: { x509_certificate: certificate.replace(/\n/g, '\\n') } })] });
    expect(escaped.tenants.get('maestrano-uat')?.sso.x509Certificate).toContain('-----BEGIN CERTIFICATE-----');
    expect(createMaestrano({ ...base(), tenants: [marketplace({ sso: { enabled: false } })] }).tenants.get('maestrano-uat')?.sso.sloEnabled).toBe(
      false,
    );
  });

  it('refuses a fingerprint that is not the configured certificate\'s, naming the key without echoing secrets', () => {
    const other = createTestCertificate({ bits: 1024 });
    const error = configError(() =>
      createMaestrano({ ...base(), tenants: [marketplace(), marketplace({ marketplace: 'b', sso: { x509_certificate: certificate, x509_fingerprint: other.fingerprint } })] }),
    );
    expect(error.issues).toEqual([{ path: 'tenants[1].sso.x509_fingerprint', message: 'does not match the configured certificate (sso.x509_certificate)' }]);
    expect(error.message).toContain('tenants[1].sso.x509_fingerprint');
    expect(error.message).not.toContain('very-secret-key');
    // The same through a marketplaces document; the matching pair (any case or separator) loads.
    expect(() => resolveTenants([marketplace({ sso: { x509_certificate: certificate, x509_fingerprint: other.fingerprint } })])).toThrow(ConfigError);
    const matching = resolveTenants([marketplace({ sso: { x509_certificate: certificate, x509_fingerprint: fingerprint.toUpperCase().replace(/:/g, '') } })]);
    expect(matching[0]?.sso.x509Fingerprint).toBe(fingerprint);
  });

  it('refuses duplicate marketplaces', () => {
    expect(configError(() => resolveTenants([marketplace(), marketplace()])).message).toContain('duplicate marketplace');
  });

  it('accepts both webhook/webhooks spellings and both path-key spellings, keeping configured paths as written', () => {
    const [rb, devpl] = resolveTenants([
      marketplace({
        marketplace: 'rb-style',
        webhook: {
          account: { groups_path: '/hooks/groups/:id', group_users_path: '/hooks/groups/:group_id/users/:id' },
          connec: { notifications_path: '/hooks/connec' },
        },
        sso: { x509_certificate: certificate, init_path: '/sso/init?marketplace=rb-style', consume_path: '/sso/consume/' },
      }),
      marketplace({
        marketplace: 'devpl-style',
        webhooks: {
          account: {
            group_path: '/maestrano/account/groups/:id/devpl-style',
            group_user_path: '/maestrano/account/groups/:group_id/users/:id/devpl-style',
          },
          connec: { notification_path: '/maestrano/connec/notifications/devpl-style', external_ids: true },
        },
      }),
    ]);
    // Maestrano calls the configured path itself (PROTOCOL §1.4): query and all, no tenant appended.
    expect(rb?.webhooks).toEqual({
      account: { groupPath: '/hooks/groups/:id', groupUserPath: '/hooks/groups/:group_id/users/:id' },
      connec: { notificationPath: '/hooks/connec', initializationPath: null },
    });
    expect(rb?.sso.initPath).toBe('/sso/init?marketplace=rb-style');
    expect(rb?.sso.consumePath).toBe('/sso/consume/');
    expect(devpl?.webhooks.account.groupPath).toBe('/maestrano/account/groups/:id/devpl-style');
    expect(devpl?.webhooks.connec.notificationPath).toBe('/maestrano/connec/notifications/devpl-style');
    expect(devpl?.connec.externalIds).toBe(true);
  });

  it('merges both spellings when a document carries both (webhooks wins per key)', () => {
    const [both] = resolveTenants([
      marketplace({
        webhook: { account: { groups_path: '/old/groups/:id', group_users_path: '/old/users/:group_id/:id' } },
        webhooks: { account: { group_path: '/new/groups/:id' } },
      }),
    ]);
    expect(both?.webhooks.account).toEqual({
      groupPath: '/new/groups/:id',
      groupUserPath: '/old/users/:group_id/:id',
    });
  });
});

describe('configFromEnv', () => {
  it('reads MNO_DEVPL_* with documented defaults', () => {
    expect(configFromEnv({ MNO_DEVPL_ENV_KEY: 'k', MNO_DEVPL_ENV_SECRET: 's', MNO_DEVPL_ENV_NAME: 'prod' })).toEqual({
      host: 'https://developer.maestrano.com',
      apiPath: '/api/config/v1',
      key: 'k',
      secret: 's',
      environmentName: 'prod',
    });
    expect(
      configFromEnv({ MNO_DEVPL_HOST: 'http://127.0.0.1:1', MNO_DEVPL_API_PATH: '/cfg', MNO_DEVPL_ENV_KEY: 'k', MNO_DEVPL_ENV_SECRET: 's' }),
    ).toMatchObject({ host: 'http://127.0.0.1:1', apiPath: '/cfg', environmentName: null });
  });

  it('names missing variables without echoing present secrets', () => {
    const e = configError(() => configFromEnv({ MNO_DEVPL_ENV_SECRET: 'shh-secret' }));
    expect(e.issues).toEqual([{ path: 'MNO_DEVPL_ENV_KEY', message: 'required' }]);
    expect(e.message).not.toContain('shh-secret');
  });
});

describe('logger redaction', () => {
  it('redacts secret-looking fields recursively and survives a throwing logger', () => {
    const seen: unknown[] = [];
    const logger = redactingLogger({
      debug() {},
      info: (_m, f) => seen.push(f),
      warn() {
        throw new Error('broken logger');
      },
      error() {},
    });
    logger.info('x', { tenant: 't', apiKey: 'k1', nested: { secret: 's', session: 'tok', ok: 1 }, SAMLResponse: 'PHN' });
    expect(seen).toEqual([{ tenant: 't', apiKey: '[redacted]', nested: { secret: '[redacted]', session: '[redacted]', ok: 1 }, SAMLResponse: '[redacted]' }]);
    expect(() => logger.warn('y')).not.toThrow();
  });

  it("logs the SDK's identifier keys (ledger, lock, job keys) and still redacts every other key", () => {
    const seen: unknown[] = [];
    const logger = redactingLogger({ debug() {}, info: (_m, f) => seen.push(f), warn() {}, error() {} });
    logger.info('x', {
      ledgerKey: 'charge:t:order-42',
      lockKey: 'webhook:t:cld-1',
      job: { dedupeKey: 'd-1', orderingKey: 'o-1', wait_key: 'w-1', idempotencyKey: 'i-1' },
      key: 'k',
      apiKey: 'k1',
      privateKey: 'pem',
      signingKey: 's',
      keys: ['a'],
      monkeyKey: 'm',
    });
    expect(seen).toEqual([
      {
        ledgerKey: 'charge:t:order-42',
        lockKey: 'webhook:t:cld-1',
        job: { dedupeKey: 'd-1', orderingKey: 'o-1', wait_key: 'w-1', idempotencyKey: 'i-1' },
        key: '[redacted]',
        apiKey: '[redacted]',
        privateKey: '[redacted]',
        signingKey: '[redacted]',
        keys: '[redacted]',
        monkeyKey: '[redacted]',
      },
    ]);
  });

  it('scrubs credentials inside values: URL user info, Basic/Bearer tokens, a flat header list, sensitive query parameters', () => {
    const lines: string[] = [];
    const log = redactingLogger({ debug() {}, info() {}, warn() {}, error: (_m, f) => lines.push(JSON.stringify(f)) });
    const basic = `Basic ${Buffer.from('app-1:s3cr3t-api-key').toString('base64')}`;
    log.error('outbound call failed', {
      url: 'https://app-1:s3cr3t-api-key@api-hub.example.com/api/v1/account/groups',
      note: `sent ${basic} and Bearer eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl`,
      request: { rawHeaders: ['Host', 'api-hub.example.com', 'Authorization', basic, 'Cookie', 'sid=abcdef', 'Accept', 'application/json'] },
      check: 'https://idp.example.com/api/v1/auth/saml/usr-1?session=SESSION-TOKEN-1&group_id=cld-1',
      failure: new Error('connect ECONNREFUSED https://u:ERROR-PASSWORD@db.example.com'),
    });
    expect(lines[0]).not.toMatch(/s3cr3t-api-key|YXBwLTE6czNjcjN0LWFwaS1rZXk=|eyJhbGciOi|sid=abcdef|SESSION-TOKEN-1|ERROR-PASSWORD/);
    expect(JSON.parse(lines[0]!)).toEqual({
      url: 'https://[redacted]@api-hub.example.com/api/v1/account/groups',
      note: 'sent Basic [redacted] and Bearer [redacted]',
      request: { rawHeaders: ['Host', 'api-hub.example.com', 'Authorization', '[redacted]', 'Cookie', '[redacted]', 'Accept', 'application/json'] },
      check: 'https://idp.example.com/api/v1/auth/saml/usr-1?session=[redacted]&group_id=cld-1',
      failure: { name: 'Error', message: 'connect ECONNREFUSED https://[redacted]@db.example.com' },
    });
  });

  it('scrubs the whole user info of a URL whose password holds an @ (the URL parser takes the last @)', () => {
    const url = 'postgres://app:s3cr@tPassw0rd@db.example.com:5432/crm';
    expect(new URL(url).password).toBe('s3cr%40tPassw0rd');
    expect(redactFields({ error: `could not connect to ${url}` })).toEqual({ error: 'could not connect to postgres://[redacted]@db.example.com:5432/crm' });
  });

  it('scrubs a scheme-less user:password@host (a DSN in a driver message), keeping emails and times', () => {
    expect(redactFields({ e: 'could not connect: app:s3cr3t@db.example.com:5432/crm' })).toEqual({ e: 'could not connect: [redacted]@db.example.com:5432/crm' });
    expect(redactFields({ e: 'dsn=app:p@ss:w0rd@10.0.0.5 refused' })).toEqual({ e: '[redacted]@10.0.0.5 refused' });
    expect(redactFields({ e: 'bad DSN "admin:hunter2@[::1]:27017"' })).toEqual({ e: 'bad DSN "[redacted]@[::1]:27017"' });
    const kept = 'mail alice@example.com at 10:30, see https://app.example.com/a:b@c?x=1 and @org/pkg@1.0.0: done';
    expect(redactFields({ e: kept })).toEqual({ e: kept });
    // A password may hold #, ? and /; a Windows path through a scoped package is no DSN.
    for (const secret of ['Sup3r#Secret', 'pa?ss', 'ab/cd+ef==', '/9xQ2+ab==', '\\secret']) {
      expect(redactFields({ e: `could not connect: app:${secret}@db.example.com:5432/crm` })).toEqual({ e: 'could not connect: [redacted]@db.example.com:5432/crm' });
    }
    const windows = "Cannot find module 'C:\\app\\node_modules\\@org\\pkg\\dist\\index.js'";
    expect(redactFields({ e: windows })).toEqual({ e: windows });
  });

  it('cuts a string longer than 8,192 characters once scrubbed, saying how much was left out', () => {
    const long = `Bearer ${'k1'.repeat(8)} ${'word '.repeat(40_000)}`;
    const { message } = redactFields({ message: long }) as { message: string };
    expect(message.startsWith('Bearer [redacted] word word')).toBe(true);
    expect(message).toBe(`${message.slice(0, MAX_LOGGED_STRING)}… [cut: ${long.length} characters in all]`);
    expect(message.length).toBe(MAX_LOGGED_STRING + `… [cut: ${long.length} characters in all]`.length);
    // Text past the cut is never logged, secrets included; one the cut splits is scrubbed whole first.
    expect(redactFields({ m: `${'x'.repeat(MAX_LOGGED_STRING)}https://u:LATE-SECRET@h` }).m).not.toContain('LATE-SECRET');
    expect(redactFields({ m: `${'x'.repeat(MAX_LOGGED_STRING - 30)} https://user:supersecretpassword@host/x` }).m).not.toContain('supersecret');
    const basic = Buffer.from('user:password').toString('base64');
    expect(redactFields({ m: `${'x'.repeat(MAX_LOGGED_STRING - 19)} Basic ${basic}` }).m).not.toContain(basic.slice(0, 12));
    // A huge value is scrubbed up to its last whitespace within 12,288 characters: a run
    // without whitespace (which any credential is) is never shown half-scrubbed.
    expect(redactFields({ m: 'y'.repeat(1_000_000) }).m).toBe('… [cut: 1000000 characters in all]');
    const token = `Bearer ${'A'.repeat(12_258)} see https://admin:hunter2secret@db.example.com/x ${'z '.repeat(5_000)}`;
    const shown = redactFields({ m: token }).m as string;
    expect(shown).not.toMatch(/hunt|admin:/);
    expect(shown.endsWith(`… [cut: ${token.length} characters in all]`)).toBe(true);
    const short = `Bearer ${'A'.repeat(12_288)} tail-text`;
    expect(redactFields({ m: short }).m).toBe(`Bearer… [cut: ${short.length} characters in all]`);
  });

  it('redacts a Basic or Bearer token of letters only (base64 of aladdin:open has no digit)', () => {
    expect(Buffer.from('aladdin:open').toString('base64')).toBe('YWxhZGRpbjpvcGVu');
    expect(redactFields({ m: 'upstream said 401 for Authorization: Basic YWxhZGRpbjpvcGVu' })).toEqual({ m: 'upstream said 401 for Authorization: Basic [redacted]' });
    expect(redactFields({ m: 'sent Bearer abcdefghijKLMNOPq' })).toEqual({ m: 'sent Bearer [redacted]' });
  });

  it('keeps text that only looks like a credential: a short word after Basic, an email, a plain list of strings', () => {
    const seen: unknown[] = [];
    const log = redactingLogger({ debug() {}, info: (_m, f) => seen.push(f), warn() {}, error() {} });
    const fields = {
      plan: 'Basic plan',
      contact: 'alice@example.com',
      link: 'https://app.example.com/a?page=2',
      tenants: ['acme', 'globex'],
    };
    log.info('x', fields);
    expect(seen).toEqual([fields]);
  });

  it('redacts fields named auth, pass, pwd or bearer (as words: author, passenger and bypass are logged)', () => {
    const seen: unknown[] = [];
    const log = redactingLogger({ debug() {}, info: (_m, f) => seen.push(f), warn() {}, error() {} });
    log.info('x', {
      auth: 'Basic abc',
      basicAuth: 'x',
      'proxy-auth': 'x',
      pass: 'p',
      db_pass: 'p',
      passPhrase: 'p',
      pwd: 'p',
      dbPwd: 'p',
      bearer: 't',
      bearerValue: 't',
      author: 'Ann',
      authority: 'https://idp.example.com',
      passenger: 'Pat',
      bypass: false,
      passed: 3,
    });
    expect(seen).toEqual([
      {
        auth: '[redacted]',
        basicAuth: '[redacted]',
        'proxy-auth': '[redacted]',
        pass: '[redacted]',
        db_pass: '[redacted]',
        passPhrase: '[redacted]',
        pwd: '[redacted]',
        dbPwd: '[redacted]',
        bearer: '[redacted]',
        bearerValue: '[redacted]',
        author: 'Ann',
        authority: 'https://idp.example.com',
        passenger: 'Pat',
        bypass: false,
        passed: 3,
      },
    ]);
  });

  it('never passes a deeply nested value through unredacted: past 8 levels it is truncated; cycles and errors are safe', () => {
    const seen: Record<string, unknown>[] = [];
    const logger = redactingLogger({ debug() {}, info: (_m, f) => f && seen.push(f), warn() {}, error() {} });
    // A secret under an innocent key, 10 levels down (the old walker returned anything past
    // 4 levels as is, so a token under { a: { b: { c: { d: { e: ... } } } } } reached the log).
    let deep: Record<string, unknown> = { token: 'tok-123', note: 'deep-note' };
    for (let i = 0; i < 10; i++) deep = { level: deep };
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    const failure = Object.assign(new Error('boom'), { apiKey: 'err-key' });
    logger.info('x', { deep, cyclic, failure, shallow: { a: { b: { c: { token: 'tok-456' } } } } });
    const text = JSON.stringify(seen);
    expect(text).not.toMatch(/tok-123|tok-456|err-key|deep-note/);
    expect(text).toContain('[truncated]');
    expect(seen[0]?.cyclic).toEqual({ name: 'loop', self: '[circular]' });
    expect(seen[0]?.failure).toEqual({ name: 'Error', message: 'boom' });
    expect(seen[0]?.shallow).toEqual({ a: { b: { c: { token: '[redacted]' } } } });
  });
});
