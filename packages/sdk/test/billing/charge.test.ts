import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ChargeInProgressError,
  ChargeOutcomeUnknownError,
  ChargeReconciliationError,
  chargeLedgerKey,
  createAccountModule,
  IdempotencyKeyReuseError,
} from '../../src/billing/index.js';
import { ConfigError, PayloadValidationError, ValidationFailedError } from '../../src/errors/index.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createTestClock, type TestClock } from '../../src/testing/conformance/clock.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { crashingLedger, makeRuntime, makeTenant, resetServer } from './helpers.js';

let api: AccountApiServer;
let clock: TestClock;
let storage: StorageAdapter;
const TENANT = 'maestrano-uat';

beforeAll(async () => {
  api = await startAccountApiServer();
});
afterAll(async () => {
  await api.close();
});
beforeEach(() => {
  resetServer(api);
  api.addGroup('cld-1');
  api.addGroup('cld-2');
  clock = createTestClock(Date.now());
  storage = memoryAdapter({ clock: clock.now });
});

function moduleFor(store: StorageAdapter, charge: Record<string, number> = {}) {
  const { runtime, logger } = makeRuntime(store, [makeTenant(api)], clock.now);
  const mod = createAccountModule(runtime, {
    billing: { charge: { claimTtlMs: 60_000, waitMs: 20_000, ...charge }, accountApi: { retry: { backoffLimitMs: 5 } } },
  });
  return { mod, logger };
}

const smsCharge = {
  tenant: TENANT,
  groupId: 'cld-1',
  priceCents: 450,
  currency: 'USD',
  description: 'SMS credits (May)',
  units: 3,
  thirdParty: true,
  periodStart: new Date('2030-05-01T00:00:00Z'),
  periodEnd: new Date('2030-05-31T23:59:59Z'),
  idempotencyKey: 'sms-2030-05-cld-1',
};

const posts = () => api.requests.filter((r) => r.method === 'POST');

describe('mno.billing.charge', () => {
  it('creates the bill and records its id in the ledger; a replay returns it without a second POST', async () => {
    const { mod } = moduleFor(storage);
    const first = await mod.billing.charge(smsCharge);
    expect(first.status).toBe('created');
    expect(first.bill).toMatchObject({ groupId: 'cld-1', priceCents: 450, units: 3, thirdParty: true });
    expect([...api.bills.values()].map((b) => b.id)).toEqual([first.billId]);
    expect(posts()[0]!.body).toMatchObject({
      group_id: 'cld-1',
      price_cents: 450,
      units: 3,
      third_party: true,
      period_started_at: '2030-05-01T00:00:00.000Z',
      period_ended_at: '2030-05-31T23:59:59.000Z',
    });
    const entry = await storage.ledger.get(chargeLedgerKey(TENANT, smsCharge.idempotencyKey));
    expect(entry).toMatchObject({ status: 'done', outcome: { billId: first.billId } });
    expect(entry!.intent).toMatchObject({ groupId: 'cld-1', priceCents: 450, description: 'SMS credits (May)' });

    const again = await mod.billing.charge(smsCharge);
    expect(again).toEqual({ billId: first.billId, idempotencyKey: smsCharge.idempotencyKey, status: 'replayed', bill: null });
    expect(api.bills.size).toBe(1);
    expect(posts()).toHaveLength(1);
  });

  it('creates exactly one bill for 20 concurrent calls with one key; all return its id', async () => {
    const { mod } = moduleFor(storage);
    const results = await Promise.all(Array.from({ length: 20 }, () => mod.billing.charge(smsCharge)));
    expect(api.bills.size).toBe(1);
    expect(posts()).toHaveLength(1);
    const billId = [...api.bills.keys()][0];
    expect(new Set(results.map((r) => r.billId))).toEqual(new Set([billId]));
    expect(results.filter((r) => r.status === 'created')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'replayed')).toHaveLength(19);
  });

  it('keeps distinct keys distinct (20 concurrent calls, 20 keys, 20 bills)', async () => {
    const { mod } = moduleFor(storage);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => mod.billing.charge({ ...smsCharge, idempotencyKey: `k-${i}` })),
    );
    expect(new Set(results.map((r) => r.billId)).size).toBe(20);
    expect(api.bills.size).toBe(20);
  });

  it('refuses a key reused for a different charge and bills nothing', async () => {
    const { mod } = moduleFor(storage);
    await mod.billing.charge(smsCharge);
    const error = await mod.billing.charge({ ...smsCharge, priceCents: 999 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdempotencyKeyReuseError);
    expect(api.bills.size).toBe(1);
    await expect(mod.billing.charge({ ...smsCharge, groupId: 'cld-2' })).rejects.toBeInstanceOf(IdempotencyKeyReuseError);
    expect(api.bills.size).toBe(1);
  });

  it('rejects bad input with PayloadValidationError before storing or sending anything', async () => {
    const { mod } = moduleFor(storage);
    const bad = [
      { ...smsCharge, priceCents: -5 },
      { ...smsCharge, currency: 'dollars' },
      { ...smsCharge, idempotencyKey: '' },
      { ...smsCharge, description: '' },
      { ...smsCharge, periodStart: new Date('2030-06-01'), periodEnd: new Date('2030-05-01') },
    ];
    for (const input of bad) {
      await expect(mod.billing.charge(input)).rejects.toBeInstanceOf(PayloadValidationError);
    }
    expect(api.requests).toHaveLength(0);
    expect(await storage.ledger.get(chargeLedgerKey(TENANT, smsCharge.idempotencyKey))).toBeNull();
  });

  it('fails with ConfigError for an unknown tenant, storing nothing', async () => {
    const { mod } = moduleFor(storage);
    await expect(mod.billing.charge({ ...smsCharge, tenant: 'nope' })).rejects.toBeInstanceOf(ConfigError);
    expect(await storage.ledger.get(chargeLedgerKey('nope', smsCharge.idempotencyKey))).toBeNull();
  });

  it('releases the key when the platform refuses (4xx), so a corrected retry can use it', async () => {
    const { mod } = moduleFor(storage);
    const error = await mod.billing.charge({ ...smsCharge, groupId: 'cld-404' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationFailedError);
    expect(await storage.ledger.get(chargeLedgerKey(TENANT, smsCharge.idempotencyKey))).toBeNull();
    const ok = await mod.billing.charge(smsCharge);
    expect(ok.status).toBe('created');
    expect(api.bills.size).toBe(1);
  });

  it('reconciles after a crash between the POST and recording the result: one bill, its id recorded', async () => {
    const crashing = crashingLedger(storage, 1);
    const { mod } = moduleFor(crashing);
    await expect(mod.billing.charge(smsCharge)).rejects.toThrow(/simulated crash/);
    expect(crashing.crashes).toBe(1);
    expect(api.bills.size).toBe(1);
    const billId = [...api.bills.keys()][0]!;
    const key = chargeLedgerKey(TENANT, smsCharge.idempotencyKey);
    expect(await storage.ledger.get(key)).toMatchObject({ status: 'pending', outcome: null });

    // While the dead owner's claim is live, another call waits, then says "in progress".
    const { mod: impatient } = moduleFor(crashing, { waitMs: 0 });
    await expect(impatient.billing.charge(smsCharge)).rejects.toBeInstanceOf(ChargeInProgressError);
    expect(api.bills.size).toBe(1);

    clock.advance(60_001);
    const recovered = await mod.billing.charge(smsCharge);
    expect(recovered).toMatchObject({ billId, status: 'reconciled' });
    expect(api.bills.size).toBe(1);
    expect(posts()).toHaveLength(1);
    expect(await storage.ledger.get(key)).toMatchObject({ status: 'done', outcome: { billId } });
    expect((await mod.billing.charge(smsCharge)).status).toBe('replayed');
  });

  it('reconciles 20 concurrent retries after a crash into the one existing bill', async () => {
    const crashing = crashingLedger(storage, 1);
    const { mod } = moduleFor(crashing);
    await expect(mod.billing.charge(smsCharge)).rejects.toThrow(/simulated crash/);
    clock.advance(60_001);
    const results = await Promise.all(Array.from({ length: 20 }, () => mod.billing.charge(smsCharge)));
    expect(api.bills.size).toBe(1);
    expect(posts()).toHaveLength(1);
    expect(new Set(results.map((r) => r.billId)).size).toBe(1);
    expect(results.filter((r) => r.status === 'reconciled')).toHaveLength(1);
  });

  it('creates the bill on recovery when the interrupted attempt never reached the platform', async () => {
    const key = chargeLedgerKey(TENANT, smsCharge.idempotencyKey);
    // A dead owner claimed the key (intent recorded) and died before its POST.
    const { mod } = moduleFor(storage);
    api.faults.push({ status: 503, times: 1, method: 'POST' });
    const error = await mod.billing.charge(smsCharge).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChargeOutcomeUnknownError);
    expect(api.bills.size).toBe(0);
    expect(await storage.ledger.get(key)).toMatchObject({ status: 'pending' });
    clock.advance(60_001);
    const retried = await mod.billing.charge(smsCharge);
    expect(retried.status).toBe('created');
    expect(api.bills.size).toBe(1);
    expect(await storage.ledger.get(key)).toMatchObject({ status: 'done', outcome: { billId: retried.billId } });
  });

  it('recovers at once when the platform created the bill but its answer failed (5xx after processing)', async () => {
    const { mod } = moduleFor(storage);
    api.faults.push({ status: 500, times: 1, method: 'POST', afterProcessing: true });
    const result = await mod.billing.charge(smsCharge);
    expect(result.status).toBe('reconciled');
    expect(api.bills.size).toBe(1);
    expect(result.billId).toBe([...api.bills.keys()][0]);
  });

  it('does not adopt a bill that differs from the intent, nor a cancelled one', async () => {
    const crashing = crashingLedger(storage, 1);
    const { mod } = moduleFor(crashing);
    await expect(mod.billing.charge(smsCharge)).rejects.toThrow(/simulated crash/);
    const [billId] = [...api.bills.keys()];
    api.bills.get(billId!)!.status = 'cancelled';
    clock.advance(60_001);
    const result = await mod.billing.charge(smsCharge);
    expect(result.status).toBe('created');
    expect(result.billId).not.toBe(billId);
    expect(api.bills.size).toBe(2);
  });

  it('refuses to guess when two bills match an interrupted charge', async () => {
    const crashing = crashingLedger(storage, 1);
    const { mod } = moduleFor(crashing);
    await expect(mod.billing.charge(smsCharge)).rejects.toThrow(/simulated crash/);
    // Another key charged the very same thing meanwhile.
    await mod.billing.charge({ ...smsCharge, idempotencyKey: 'other-key' });
    clock.advance(60_001);
    const error = await mod.billing.charge(smsCharge).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChargeReconciliationError);
    expect((error as ChargeReconciliationError).candidateBillIds).toHaveLength(2);
    expect(api.bills.size).toBe(2);
  });
});
