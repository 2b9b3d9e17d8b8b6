/**
 * A range rule is printed as the rule it is: `.positive()` refuses 0, so its message must not
 * read "minimum 0" (0 is the minimum the user just passed); `.min(0)` accepts 0 and says so.
 */
import { createMaestrano, type Logger, type MaestranoConfigInput, memoryAdapter } from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';
import { parsePlan } from '../../src/billing/config.js';
import { configError } from './helpers.js';

const { certificate } = createTestCertificate({ bits: 1024 });
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

const config = (overrides: Record<string, unknown>): MaestranoConfigInput =>
  ({
    tenants: [
      {
        marketplace: 'acme',
        app: { host: 'https://app.example.com' },
        api: { id: 'app-acme', key: 'key', host: 'https://api-hub.example.com' },
        sso: { x509_certificate: certificate },
      },
    ],
    storage: memoryAdapter(),
    provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
    onLogin: () => new Response('ok'),
    logger: quiet,
    ...overrides,
  }) as MaestranoConfigInput;

const issuesOf = (overrides: Record<string, unknown>) => configError(() => createMaestrano(config(overrides))).issues;

describe('too_small / too_big messages honour inclusive and exact bounds', () => {
  it('a plan priced 0 is "greater than 0", not "too small (minimum 0)"', () => {
    const result = parsePlan({ priceCents: 0, description: 'Pro' });
    expect(result).toEqual({ issues: [{ path: 'plan.priceCents', message: 'must be greater than 0' }] });
    const negative = parsePlan({ priceCents: 100, description: 'Pro', initialCents: -1 });
    expect(negative).toEqual({ issues: [{ path: 'plan.initialCents', message: 'must be at least 0' }] });
    const long = parsePlan({ priceCents: 100, description: 'Pro', appTrialDays: 3651 });
    expect(long).toEqual({ issues: [{ path: 'plan.appTrialDays', message: 'must be at most 3650' }] });
    const empty = parsePlan({ priceCents: 100, description: '' });
    expect(empty).toEqual({ issues: [{ path: 'plan.description', message: 'must have at least 1 character' }] });
  });

  it('createMaestrano names exclusive and inclusive bounds of its own options', () => {
    expect(issuesOf({ limits: { maxBodyBytes: 0 } })).toEqual([{ path: 'limits.maxBodyBytes', message: 'must be greater than 0' }]);
    expect(issuesOf({ sso: { clockSkewMs: -1 } })).toEqual([{ path: 'sso.clockSkewMs', message: 'must be at least 0' }]);
    expect(issuesOf({ sso: { clockSkewMs: 3_600_001 } })).toEqual([{ path: 'sso.clockSkewMs', message: 'must be at most 3600000' }]);
    expect(issuesOf({ instanceId: '' })).toEqual([{ path: 'instanceId', message: 'must have at least 1 character' }]);
    expect(issuesOf({ instanceId: 'x'.repeat(201) })).toEqual([{ path: 'instanceId', message: 'must have at most 200 characters' }]);
    const message = configError(() => createMaestrano(config({ limits: { maxNotificationBodyBytes: 0 } }))).message;
    expect(message).toContain('limits.maxNotificationBodyBytes: must be greater than 0');
    expect(message).not.toMatch(/too small|minimum/);
  });
});
