/**
 * A wait for another holder (a charge's claim, a storage lock) is a duration: a wall clock
 * stepped back meanwhile (NTP, a VM resumed, an operator) must not stretch it. Measured on
 * `Date.now()`, a 300 ms wait became an hour and more, holding the caller's HTTP request.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChargeInProgressError, createAccountModule } from '../../src/billing/index.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createTestClock, type TestClock } from '../../src/testing/conformance/clock.js';
import { createAccountWebhooks } from '../../src/webhooks/account.js';
import { withStorageLock } from '../../src/webhooks/locks.js';
import { basicAuth, crashingLedger, makeRuntime, makeTenant, useAccountApi } from './helpers.js';

const server = useAccountApi('cld-1');
let clock: TestClock;
let storage: StorageAdapter;
const TENANT = 'maestrano-uat';
const silent = { debug() {}, info() {}, warn() {}, error() {} };

beforeEach(() => {
  clock = createTestClock(Date.now());
  storage = memoryAdapter({ clock: clock.now });
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** Steps `Date.now()` back an hour, `afterMs` from now. */
function stepClockBack(afterMs: number): void {
  const realNow = Date.now.bind(Date);
  let offset = 0;
  vi.spyOn(Date, 'now').mockImplementation(() => realNow() + offset);
  setTimeout(() => (offset = -3_600_000), afterMs);
}

/** `promise`, or 'still waiting' when it has not settled within `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | 'still waiting'> {
  return Promise.race([promise, new Promise<'still waiting'>((r) => setTimeout(() => r('still waiting'), ms))]);
}

describe('waits and a wall clock stepped back', () => {
  it('a charge waiting for another call with the same key gives up after waitMs, not an hour later', async () => {
    const crashing = crashingLedger(storage, 1);
    const moduleFor = (waitMs: number) => {
      const { runtime } = makeRuntime(crashing, [makeTenant(server())], clock.now);
      return createAccountModule(runtime, { billing: { charge: { claimTtlMs: 60_000, waitMs }, accountApi: { retry: { backoffLimitMs: 5 } } } });
    };
    const charge = { tenant: TENANT, groupId: 'cld-1', priceCents: 450, currency: 'USD', description: 'SMS credits', idempotencyKey: 'sms-1' };
    // The first call dies between its POST and recording it: its claim stays pending for 60 s.
    await expect(moduleFor(300).billing.charge(charge)).rejects.toThrow(/simulated crash/);
    stepClockBack(50);
    const waiting = moduleFor(300).billing.charge(charge).catch((e: unknown) => e);
    expect(await within(waiting, 10_000)).toBeInstanceOf(ChargeInProgressError);
    expect(server().bills.size).toBe(1);
  });

  it('withStorageLock on a held lock answers "not acquired" after waitMs, not an hour later', async () => {
    expect(await storage.locks.acquire('k', 'other', 60_000)).toBe(true);
    stepClockBack(50);
    const run = withStorageLock(storage, 'k', { owner: 'me', ttlMs: 60_000, waitMs: 300, logger: silent }, async () => 'ran');
    expect(await within(run, 10_000)).toEqual({ acquired: false });
  });

  it('a group deletion waiting for an SSO login still provisioning the group answers 503 after lockWaitMs, not an hour later', async () => {
    const tenant = makeTenant(server());
    const { runtime } = makeRuntime(storage, [tenant], clock.now);
    const webhooks = createAccountWebhooks({
      storage,
      logger: runtime.logger,
      hooks: {},
      account: () => {
        throw new Error('not called');
      },
      cancelRecurringBills: true,
      instanceId: 'test-instance',
      lockWaitMs: 300,
    });
    // The login's provisioning claim, live for 60 s.
    expect(await storage.groups.claim(TENANT, 'cld-9', { owner: 'sso-login', ttlMs: 60_000 })).toMatchObject({ state: 'claimed' });
    stepClockBack(50);
    const headers = new Headers({ authorization: basicAuth(tenant.api.id, tenant.api.key) });
    const request = new Request(`http://127.0.0.1/maestrano/account/groups/cld-9/${tenant.name}`, { method: 'DELETE', headers });
    const answer = webhooks.groupDeleted({ request, tenant, params: { id: 'cld-9' } });
    const res = await within(Promise.resolve(answer), 10_000);
    expect(res).toBeInstanceOf(Response);
    expect((res as Response).status).toBe(503);
  });
});
