/**
 * `createMaestrano({ tenants: parseMarketplacesDocument(doc, …) })` passes resolved `Tenant`s
 * where marketplace objects are expected: the error says so and what to pass instead, rather
 * than listing `name`, `webhooks.account.groupPath`, … as unknown keys.
 */
import {
  createMaestrano,
  type Logger,
  type MaestranoConfigInput,
  type MarketplaceInput,
  memoryAdapter,
  parseMarketplacesDocument,
  resolveTenants,
  staticTenants,
} from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';
import { configError } from './helpers.js';

const { certificate } = createTestCertificate({ bits: 1024 });
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const API_KEY = 'api-key-must-not-leak';

const marketplace = (name: string): MarketplaceInput => ({
  marketplace: name,
  app: { host: 'https://app.example.com' },
  api: { id: `app-${name}`, key: API_KEY, host: 'https://api-hub.example.com' },
  sso: { x509_certificate: certificate },
});

const config = (tenants: unknown): MaestranoConfigInput =>
  ({
    tenants,
    storage: memoryAdapter(),
    provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
    onLogin: () => new Response('ok'),
    logger: quiet,
  }) as MaestranoConfigInput;

describe('already-resolved tenants passed as marketplace objects', () => {
  const parsed = parseMarketplacesDocument({ marketplaces: [marketplace('acme'), marketplace('beta')] }, 'x');

  it('createMaestrano says what they are and to pass staticTenants(list) instead, in one issue', () => {
    const e = configError(() => createMaestrano(config(parsed)));
    expect(e.issues).toHaveLength(1);
    expect(e.issues?.[0]?.path).toBe('tenants');
    expect(e.message).toContain('already-resolved Tenant');
    expect(e.message).toContain('staticTenants(list)');
    expect(e.message).not.toContain('unknown key');
    expect(e.message).not.toContain(API_KEY);
  });

  it('so does a copy of them (a spread loses the redacting toJSON, not the shape)', () => {
    const copies = parsed.map((t) => ({ ...t, api: { ...t.api } }));
    const e = configError(() => createMaestrano(config(copies)));
    expect(e.message).toContain('staticTenants(list)');
    expect(e.message).not.toContain('unknown key');
  });

  it('a list mixing marketplace objects and a resolved tenant names the resolved one', () => {
    const e = configError(() => createMaestrano(config([marketplace('gamma'), parsed[0]])));
    expect(e.issues).toEqual([{ path: 'tenants[1]', message: expect.stringContaining('already-resolved Tenant') }]);
    const r = configError(() => resolveTenants([parsed[1]]));
    expect(r.issues).toEqual([{ path: 'tenants[0]', message: expect.stringContaining('staticTenants(list)') }]);
  });

  it('what the message suggests works', () => {
    const mno = createMaestrano(config(staticTenants(parsed)));
    expect(mno.tenants.list().map((t) => t.name)).toEqual(['acme', 'beta']);
  });

  it('a marketplace object with a misspelt key still gets the unknown-key issue', () => {
    const typo = { ...marketplace('acme'), name: 'acme' };
    const e = configError(() => createMaestrano(config([typo])));
    expect(e.message).toContain('unknown key(s) "name"');
  });
});
