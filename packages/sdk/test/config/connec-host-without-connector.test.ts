// A `connec.host` ending with its base path (`…/api/v2`, which the Connec! client adds again)
// is refused when the app has a connector: every sync call would 404. An app without a
// connector never calls Connec!: its marketplace's `connec` block is unused (as tenant.ts says
// of the synchronization paths, a value the SDK cannot use never refuses a marketplace whose SSO
// and webhooks do not depend on it), so it starts, serves SSO, and logs one warning naming the
// marketplace and the host to use (the Connec! client still refuses such a host at first use).
import { ConfigError, createMaestrano, defineConnector, defineEntity, type Logger, memoryAdapter } from '@org/maestrano-sdk';
import { createTestIdp } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';

const idp = createTestIdp();
const contacts = defineEntity({
  name: 'contacts',
  connec: 'people',
  direction: 'inbound',
  toLocal: (p) => ({ name: p.last_name ?? '' }),
  local: { create: async () => ({ id: 'x' }), update: async () => undefined },
});

function setup(connec: Record<string, unknown>, withConnector: boolean) {
  const warnings: { message: string; fields: Record<string, unknown> }[] = [];
  const logger: Logger = { debug() {}, info() {}, warn: (message, fields = {}) => void warnings.push({ message, fields }), error() {} };
  const base = idp.marketplace({ name: 'acme', appHost: 'https://app.example.com', apiId: 'app-1', apiKey: 'key-1-0123456789' });
  const create = () =>
    createMaestrano({
      tenants: [{ ...base, connec }],
      storage: memoryAdapter(),
      provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
      onLogin: () => new Response('ok'),
      logger,
      ...(withConnector ? { connector: defineConnector({ entities: [contacts] }) } : {}),
    });
  return { warnings, create };
}

describe('a connec.host ending with its base path', () => {
  it('does not stop an SSO-only app from starting and serving SSO: one warning names the marketplace and the fix', async () => {
    const { warnings, create } = setup({ host: 'https://api-connec.maestrano.com/api/v2' }, false);
    const mno = create();
    const init = await mno.handler(new Request('https://app.example.com/maestrano/auth/saml/init/acme'));
    expect(init.status).toBe(302);
    const connec = warnings.filter((w) => w.message.includes('connec.host'));
    expect(connec).toEqual([
      {
        message:
          'maestrano: marketplace "acme": tenants[0].connec.host must not end with the base path /api/v2, which is added to it (use https://api-connec.maestrano.com); this app has no connector, so it does not call Connec! (the Connec! client would refuse it)',
        fields: { tenant: 'acme', path: 'tenants[0].connec.host' },
      },
    ]);
  });

  it('is still refused for an app with a connector, naming the key and the host to use', () => {
    const { create } = setup({ host: 'https://api-connec.maestrano.com/api/v2/' }, true);
    let failure: unknown;
    try {
      create();
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(ConfigError);
    expect((failure as ConfigError).issues).toEqual([
      { path: 'tenants[0].connec.host', message: 'must not end with the base path /api/v2, which is added to it (use https://api-connec.maestrano.com)' },
    ]);
  });

  it('is neither refused nor warned about when the marketplace disables Connec!', () => {
    const { warnings, create } = setup({ enabled: false, host: 'https://api-connec.maestrano.com/api/v2' }, true);
    create();
    expect(warnings.filter((w) => w.message.includes('connec.host'))).toEqual([]);
  });
});
