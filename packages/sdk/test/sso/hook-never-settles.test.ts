/**
 * A provisioning hook that ignores `ctx.signal` and never settles. `ProvisioningContext.signal`
 * is documented as "aborted when the SDK stops waiting for the hook (the provisioning claim
 * expires)": the login must then end with an error, not hang for good.
 */
import type { TestUser } from '@org/maestrano-sdk/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100', groupName: 'DoeCorp', groupRole: 'Admin' };

let h: Harness;
afterEach(async () => {
  await h?.close();
});

describe('SSO – a provisioning hook that never settles', () => {
  it('the login fails once the provisioning claim expires within three claim TTLs (503), and a later login succeeds', async () => {
    let hang = true;
    let aborted = false;
    h = await startHarness({
      extraConfig: { sso: { provisioningClaimTtlMs: 1_000 } } as never,
      provisioning: {
        createCompany: async (group: { uid: string }, ctx: { signal: AbortSignal; idempotencyKey: string }) => {
          ctx.signal.addEventListener('abort', () => (aborted = true));
          if (hang) return new Promise(() => {}); // ignores its signal
          return { id: `co-${group.uid}` };
        },
      },
    });
    const started = Date.now();
    const first = await Promise.race([h.login(alice), new Promise<'hung'>((r) => setTimeout(() => r('hung'), 8_000))]);
    expect(aborted).toBe(true);
    expect(first).not.toBe('hung');
    expect((first as { status: number }).status).toBeGreaterThanOrEqual(500);
    expect(Date.now() - started).toBeLessThan(6_000);
    hang = false;
    const second = await h.login(alice);
    expect(second.status).toBe(200);
    expect(second.body['companyId']).toBe('co-cld-100');
  }, 20_000);
});
