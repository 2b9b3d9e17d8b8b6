/**
 * HTTP Basic cannot carry a user-id holding ':' (RFC 7617 §2: the first colon ends it). A
 * marketplace configured with `api.id: "app:s"` could never authenticate (its id is read as
 * "app"), and its credentials `app:s` + `ecret` are the very header of a marketplace configured
 * with `app` + `s:ecret`, which accepted them on its own webhooks. Such an id is refused.
 */
import { ConfigError, createMaestrano, memoryAdapter, parseMarketplacesDocument } from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';

const { certificate } = createTestCertificate({ bits: 1024 });
const marketplace = (name: string, id: string, key: string) => ({
  marketplace: name,
  app: { host: 'https://app.example.com' },
  api: { id, key, host: 'https://api-hub.example.com' },
  sso: { x509_certificate: certificate },
});

describe('an api.id containing ":"', () => {
  it('is refused in a marketplaces document, naming api.id and without the key', () => {
    const error = (() => {
      try {
        parseMarketplacesDocument({ marketplaces: [marketplace('one', 'app:s', 'ecret-value')] }, 'maestrano.json');
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/api\.id/);
    expect((error as Error).message).toContain('must not contain ":"');
    expect((error as Error).message).not.toContain('ecret-value');
  });

  it('is refused in marketplaces given to createMaestrano; the same id without ":" is accepted', () => {
    const config = (id: string) => ({
      tenants: [marketplace('one', id, 's:ecret')],
      storage: memoryAdapter(),
      provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
      onLogin: () => new Response('ok'),
    });
    expect(() => createMaestrano(config('app:s'))).toThrow(/api\.id/);
    // A key may hold ':' (everything after the first colon is the password).
    expect(createMaestrano(config('app')).handler).toBeTypeOf('function');
  });
});
