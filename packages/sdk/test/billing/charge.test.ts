import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ChargeGroupCancelledError,
  ChargeInProgressError,
  ChargeOutcomeUnknownError,
  ChargeReconciliationError,
  chargeBillLedgerKey,
  chargeLedgerKey,
  claimedCallTimeouts,
  createAccountModule,
  IdempotencyKeyReuseError,
} from '../../src/billing/index.js';
import {
  ConfigError,
  ConnectionError,
  PayloadValidationError,
  StorageError,
  ValidationFailedError,
} from '../../src/errors/index.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter, memoryState } from '../../src/storage/memory.js';
import { createTestClock, type TestClock } from '../../src/testing/conformance/clock.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { createWorker } from '../../src/worker/index.js';
import { crashingLedger, delay, losingFirstPost, makeRuntime, makeTenant, provisionGroup, resetServer } from './helpers.js';

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

function moduleFor(store: StorageAdapter, charge: Record<string, number> = {}, fetchImpl?: typeof fetch) {
  const { runtime, logger } = makeRuntime(store, [makeTenant(api)], clock.now);
  if (fetchImpl) runtime.fetch = fetchImpl;
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
    // Under no key at all (the empty key included): the ledger is empty, and no job was stored.
    expect(await storage.ledger.get(chargeLedgerKey(TENANT, ''))).toBeNull();
    expect([...memoryState(storage).ledger.keys()]).toEqual([]);
    expect(memoryState(storage).jobs.size).toBe(0);
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

  it('reconciles a bill whose period the platform stored to the second (one bill, not a second charge)', async () => {
    const periodic = {
      ...smsCharge,
      idempotencyKey: 'period-ms',
      periodStart: new Date('2030-03-01T10:00:00.250Z'),
      periodEnd: new Date('2030-03-31T23:59:59.999Z'),
    };
    const crashing = crashingLedger(storage, 1);
    const { mod } = moduleFor(crashing);
    await expect(mod.billing.charge(periodic)).rejects.toThrow(/simulated crash/);
    const [billId, bill] = [...api.bills.entries()][0]!;
    // A platform whose columns keep whole seconds (Rails on MySQL without fractions).
    bill.period_started_at = '2030-03-01T10:00:00Z';
    bill.period_ended_at = '2030-03-31T23:59:59Z';
    clock.advance(60_001);
    expect(await mod.billing.charge(periodic)).toMatchObject({ billId, status: 'reconciled' });
    expect(api.bills.size).toBe(1);
    expect(posts()).toHaveLength(1);
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

  it('cancels the duplicate left by a POST that reached the platform after the retry charged (billing.check_duplicates)', async () => {
    const key = chargeLedgerKey(TENANT, smsCharge.idempotencyKey);
    const lost = losingFirstPost(); // sent, answer lost: the platform only gets it much later
    const { runtime, logger } = makeRuntime(storage, [makeTenant(api)], clock.now);
    runtime.fetch = lost.fetch;
    const mod = createAccountModule(runtime, { billing: { duplicateCheckDelayMs: 600_000, charge: { claimTtlMs: 60_000 } } });
    await expect(mod.billing.charge(smsCharge)).rejects.toBeInstanceOf(ChargeOutcomeUnknownError);
    clock.advance(60_001);
    const retried = await mod.billing.charge(smsCharge);
    expect(retried.status).toBe('created');
    expect((await lost.land()).ok).toBe(true);
    // Another key's identical charge is that key's bill, duplicate or not.
    const other = await mod.billing.charge({ ...smsCharge, idempotencyKey: 'sms-2030-05-cld-1-topup' });
    expect([...api.bills.values()].filter((b) => b.status !== 'cancelled')).toHaveLength(3);

    const worker = createWorker(runtime, mod.contribution.jobs ?? {});
    await worker.drain({ pollIntervalMs: 5 });
    expect([...api.bills.values()].filter((b) => b.status !== 'cancelled')).toHaveLength(3); // not before its delay
    clock.advance(600_001);
    expect((await worker.drain({ pollIntervalMs: 5 })).deadLettered).toBe(0);
    const active = [...api.bills.values()].filter((b) => b.status !== 'cancelled').map((b) => b.id);
    expect(active.sort()).toEqual([retried.billId, other.billId].sort());
    expect(await storage.ledger.get(key)).toMatchObject({ status: 'done', outcome: { billId: retried.billId } });
    expect(logger.entries.filter((e) => e.level === 'warn' && /duplicate bill cancelled/.test(e.message))).toHaveLength(1);
  });

  it("a taken-over charge that adopts the earlier POST's late bill still has its own late POST checked for", async () => {
    const stuck: Request[] = [];
    let mode: 'lose' | 'land-first-then-lose' | 'pass' = 'lose';
    const { runtime } = makeRuntime(storage, [makeTenant(api)], clock.now);
    runtime.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const req = new Request(input, init);
      if (req.method === 'POST' && mode === 'lose') {
        mode = 'land-first-then-lose';
        stuck.push(req.clone());
        throw new TypeError('fetch failed');
      }
      if (req.method === 'POST' && mode === 'land-first-then-lose') {
        mode = 'pass';
        await fetch(stuck.shift() as Request); // the first call's POST reaches the platform now...
        stuck.push(req.clone()); // ...and this one's is stuck in turn
        throw new TypeError('fetch failed');
      }
      return fetch(req);
    }) as typeof fetch;
    const mod = createAccountModule(runtime, { billing: { duplicateCheckDelayMs: 600_000, charge: { claimTtlMs: 60_000 }, accountApi: { retry: { backoffLimitMs: 5 } } } });
    await expect(mod.billing.charge(smsCharge)).rejects.toBeInstanceOf(ChargeOutcomeUnknownError);
    clock.advance(60_001);
    const adopted = await mod.billing.charge(smsCharge);
    expect(adopted.status).toBe('reconciled');
    expect((await fetch(stuck.shift() as Request)).ok).toBe(true); // its own POST lands late
    clock.advance(600_001);
    await createWorker(runtime, mod.contribution.jobs ?? {}).drain({ pollIntervalMs: 5 });
    expect([...api.bills.values()].filter((b) => b.status !== 'cancelled').map((b) => b.id)).toEqual([adopted.billId]);
  });

  it('a taken-over claim is not given back on a refusal: the next call reconciles and has the late POST checked for', async () => {
    let refuseNext = false;
    const lost = losingFirstPost(async (req) => {
      if (req.method === 'POST' && refuseNext) {
        refuseNext = false;
        return new Response(JSON.stringify({ success: false, errors: { base: ['rate limited'] }, data: {} }), { status: 429, headers: { 'retry-after': '1' } });
      }
      return fetch(req);
    });
    const { runtime } = makeRuntime(storage, [makeTenant(api)], clock.now);
    runtime.fetch = lost.fetch;
    const mod = createAccountModule(runtime, { billing: { duplicateCheckDelayMs: 600_000, charge: { claimTtlMs: 60_000, waitMs: 0 }, accountApi: { retry: { backoffLimitMs: 5 } } } });
    await expect(mod.billing.charge(smsCharge)).rejects.toBeInstanceOf(ChargeOutcomeUnknownError);
    clock.advance(60_001);
    refuseNext = true;
    await expect(mod.billing.charge(smsCharge)).rejects.toThrow();
    // The key stays held (not released) until the claim expires, then the retry reconciles.
    await expect(mod.billing.charge(smsCharge)).rejects.toBeInstanceOf(ChargeInProgressError);
    clock.advance(60_001);
    const retried = await mod.billing.charge(smsCharge);
    expect(retried.status).toBe('created');
    expect((await lost.land()).ok).toBe(true); // the first POST lands now
    clock.advance(600_001);
    await createWorker(runtime, mod.contribution.jobs ?? {}).drain({ pollIntervalMs: 5 });
    expect([...api.bills.values()].filter((b) => b.status !== 'cancelled').map((b) => b.id)).toEqual([retried.billId]);
  });

  it("the duplicate check never cancels a bill another key's charge created and is about to claim: that charge retries instead of reporting a cancelled bill", async () => {
    // export-1's first POST is lost and lands late; export-2 charges the very same thing.
    let pauseOwnership: (() => Promise<void>) | null = null;
    const lost = losingFirstPost(async (req) => {
      const res = await fetch(req);
      if (req.method === 'POST' && pauseOwnership) {
        const run = pauseOwnership;
        pauseOwnership = null;
        await run(); // between export-2's POST answer and its ownership claim
      }
      return res;
    });
    const { runtime } = makeRuntime(storage, [makeTenant(api)], clock.now);
    runtime.fetch = lost.fetch;
    const mod = createAccountModule(runtime, { billing: { duplicateCheckDelayMs: 600_000, charge: { claimTtlMs: 60_000 }, accountApi: { retry: { backoffLimitMs: 5 } } } });
    const same = { ...smsCharge, idempotencyKey: 'export-1' };
    await expect(mod.billing.charge(same)).rejects.toBeInstanceOf(ChargeOutcomeUnknownError);
    clock.advance(60_001);
    const first = await mod.billing.charge(same);
    expect(first.status).toBe('created');
    clock.advance(600_001);
    const worker = createWorker(runtime, mod.contribution.jobs ?? {});
    pauseOwnership = async () => {
      await worker.drain({ pollIntervalMs: 5 });
    };
    const second = await mod.billing.charge({ ...same, idempotencyKey: 'export-2' }).catch((e: unknown) => e);
    // Its bill was taken (and cancelled) by the check: export-2 is told to retry, never "created".
    expect(second).toBeInstanceOf(ChargeOutcomeUnknownError);
    clock.advance(60_001);
    const again = await mod.billing.charge({ ...same, idempotencyKey: 'export-2' });
    expect(again.status).toBe('created');
    const active = [...api.bills.values()].filter((b) => b.status !== 'cancelled').map((b) => b.id);
    expect(active.sort()).toEqual([first.billId, again.billId].sort());
    expect(lost.sent).toBe(true);
  });

  it('a duplicate check whose cancel fails cancels the twin on its retry (the twin it took stays its to cancel)', async () => {
    let failCancels = false;
    const lost = losingFirstPost(async (req) =>
      req.method === 'DELETE' && failCancels
        ? new Response('{"errors":[{"title":"boom"}]}', { status: 503, headers: { 'content-type': 'application/json' } })
        : fetch(req),
    );
    const { runtime } = makeRuntime(storage, [makeTenant(api)], clock.now);
    runtime.fetch = lost.fetch;
    const mod = createAccountModule(runtime, { billing: { duplicateCheckDelayMs: 600_000, charge: { claimTtlMs: 60_000 }, accountApi: { retry: { limit: 0, backoffLimitMs: 5 } } } });
    await expect(mod.billing.charge(smsCharge)).rejects.toBeInstanceOf(ChargeOutcomeUnknownError);
    clock.advance(60_001);
    const retried = await mod.billing.charge(smsCharge);
    expect((await lost.land()).ok).toBe(true);
    clock.advance(600_001);
    const worker = createWorker(runtime, mod.contribution.jobs ?? {});
    failCancels = true;
    await worker.drain({ pollIntervalMs: 5, backoff: { baseMs: 1, maxMs: 1 } });
    expect(await storage.jobs.counts({ type: 'billing.check_duplicates' })).toMatchObject({ done: 0, dead: 0 });
    failCancels = false;
    clock.advance(3_600_000);
    await worker.drain({ pollIntervalMs: 5, backoff: { baseMs: 1, maxMs: 1 } });
    expect(await storage.jobs.counts({ type: 'billing.check_duplicates' })).toMatchObject({ done: 1 });
    expect([...api.bills.values()].filter((b) => b.status !== 'cancelled').map((b) => b.id)).toEqual([retried.billId]);
  });

  it('refuses to charge a cancelled group (ChargeGroupCancelledError, nothing sent, key free), but still replays a charge made before', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    const { mod } = moduleFor(storage);
    const before = await mod.billing.charge(smsCharge);
    await storage.groups.cancel(TENANT, 'cld-1');
    expect(await mod.billing.charge(smsCharge)).toMatchObject({ billId: before.billId, status: 'replayed' });
    const key = { ...smsCharge, idempotencyKey: 'after-cancel' };
    const error = await mod.billing.charge(key).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChargeGroupCancelledError);
    expect(error).toMatchObject({ tenant: TENANT, groupId: 'cld-1', idempotencyKey: 'after-cancel' });
    expect(posts()).toHaveLength(1);
    expect(await storage.ledger.get(chargeLedgerKey(TENANT, 'after-cancel'))).toBeNull();
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

  it('refuses to guess when two bills that no charge owns match an interrupted charge', async () => {
    // Crash right after the POST, before anything about the bill is stored.
    const crashing = crashingLedger(storage, 1, { op: 'claim', keyPrefix: 'chargebill:' });
    const { mod } = moduleFor(crashing);
    await expect(mod.billing.charge(smsCharge)).rejects.toThrow(/simulated crash/);
    // The very same thing billed outside `charge` (no idempotency key owns it).
    await mod.billing.bills.create(TENANT, {
      groupId: 'cld-1',
      priceCents: 450,
      currency: 'USD',
      description: 'SMS credits (May)',
      units: 3,
      thirdParty: true,
      periodStartedAt: smsCharge.periodStart,
      periodEndedAt: smsCharge.periodEnd,
    });
    clock.advance(60_001);
    const error = await mod.billing.charge(smsCharge).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChargeReconciliationError);
    expect((error as ChargeReconciliationError).candidateBillIds).toHaveLength(2);
    expect(api.bills.size).toBe(2);
  });
});

describe('mno.billing.charge: one bill per idempotency key (bill ownership)', () => {
  const exportCharge = { tenant: TENANT, groupId: 'cld-1', priceCents: 500, currency: 'USD', description: 'Contacts export' };
  const ownerOf = async (billId: string) => (await storage.ledger.get(chargeBillLedgerKey(TENANT, billId)))?.intent;

  it('records which key owns each bill, before the outcome', async () => {
    const { mod } = moduleFor(storage);
    const result = await mod.billing.charge(smsCharge);
    expect(await storage.ledger.get(chargeBillLedgerKey(TENANT, result.billId))).toMatchObject({
      status: 'done',
      intent: { kind: 'charge-bill', billId: result.billId, idempotencyKey: smsCharge.idempotencyKey },
      outcome: { idempotencyKey: smsCharge.idempotencyKey },
    });
  });

  it("does not adopt another key's bill after an unclear POST failure (502, nothing created)", async () => {
    const { mod } = moduleFor(storage);
    const b = await mod.billing.charge({ ...exportCharge, idempotencyKey: 'export:B' });
    api.faults.push({ status: 502, times: 1, method: 'POST', pathPrefix: '/api/v1/account/bills' });
    const error = await mod.billing.charge({ ...exportCharge, idempotencyKey: 'export:A' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChargeOutcomeUnknownError);
    expect(api.bills.size).toBe(1);
    expect(await ownerOf(b.billId)).toMatchObject({ idempotencyKey: 'export:B' });

    // The retry after the claim TTL reconciles, finds only B's bill, and charges A.
    clock.advance(60_001);
    const a = await mod.billing.charge({ ...exportCharge, idempotencyKey: 'export:A' });
    expect(a.status).toBe('created');
    expect(a.billId).not.toBe(b.billId);
    expect(api.bills.size).toBe(2);
    expect(await ownerOf(a.billId)).toMatchObject({ idempotencyKey: 'export:A' });
    expect(await storage.ledger.get(chargeLedgerKey(TENANT, 'export:A'))).toMatchObject({ outcome: { billId: a.billId } });
  });

  it('a retry after the claim TTL does not adopt a bill another key created meanwhile', async () => {
    const { mod } = moduleFor(storage);
    api.faults.push({ status: 502, times: 1, method: 'POST', pathPrefix: '/api/v1/account/bills' });
    await expect(mod.billing.charge({ ...exportCharge, idempotencyKey: 'export:A' })).rejects.toBeInstanceOf(
      ChargeOutcomeUnknownError,
    );
    const b = await mod.billing.charge({ ...exportCharge, idempotencyKey: 'export:B' });
    clock.advance(60_001);
    const a = await mod.billing.charge({ ...exportCharge, idempotencyKey: 'export:A' });
    expect(a.status).toBe('created');
    expect(new Set([a.billId, b.billId]).size).toBe(2);
    expect(api.bills.size).toBe(2);
  });

  it("another key's charge of the same thing does not make reconciliation ambiguous", async () => {
    const crashing = crashingLedger(storage, 1, { op: 'claim', keyPrefix: 'chargebill:' });
    const { mod } = moduleFor(crashing);
    await expect(mod.billing.charge(smsCharge)).rejects.toThrow(/simulated crash/);
    const [ownBill] = [...api.bills.keys()];
    await mod.billing.charge({ ...smsCharge, idempotencyKey: 'other-key' });
    clock.advance(60_001);
    const result = await mod.billing.charge(smsCharge);
    expect(result).toMatchObject({ status: 'reconciled', billId: ownBill });
    expect(api.bills.size).toBe(2);
    expect(posts()).toHaveLength(2);
  });

  it('a crash after the ownership claim still reconciles into the own bill, never into another key', async () => {
    // Ownership claimed, then the process dies before completing anything.
    const crashing = crashingLedger(storage, 1, { op: 'complete', keyPrefix: 'chargebill:' });
    const { mod } = moduleFor(crashing);
    await expect(mod.billing.charge({ ...exportCharge, idempotencyKey: 'export:A' })).rejects.toThrow(/simulated crash/);
    const [billA] = [...api.bills.keys()];
    // B's POST fails unclearly and creates nothing: A's (unrecorded) bill is still not B's.
    api.faults.push({ status: 502, times: 1, method: 'POST' });
    await expect(mod.billing.charge({ ...exportCharge, idempotencyKey: 'export:B' })).rejects.toBeInstanceOf(
      ChargeOutcomeUnknownError,
    );
    clock.advance(60_001);
    expect(await mod.billing.charge({ ...exportCharge, idempotencyKey: 'export:A' })).toMatchObject({
      status: 'reconciled',
      billId: billA,
    });
    const b = await mod.billing.charge({ ...exportCharge, idempotencyKey: 'export:B' });
    expect(b.status).toBe('created');
    expect(api.bills.size).toBe(2);
  });

  it('a bill adopted by another key between its POST and its ownership claim is reported once; the creator charges again', async () => {
    // B's POST creates the bill; before its answer arrives, A's POST fails (502, nothing
    // created) and A's reconciliation finds B's bill, which no key owns yet.
    let interleave: (() => Promise<unknown>) | null = null;
    const { mod } = moduleFor(storage, {}, (async (input: RequestInfo | URL, init?: RequestInit) => {
      const response = await fetch(input, init);
      const run = interleave;
      interleave = null;
      if (run) await run();
      return response;
    }) as typeof fetch);
    let a: unknown;
    interleave = async () => {
      api.faults.push({ status: 502, times: 1, method: 'POST' });
      a = await mod.billing.charge({ ...exportCharge, idempotencyKey: 'export:A' }).catch((e: unknown) => e);
    };
    const b = await mod.billing.charge({ ...exportCharge, idempotencyKey: 'export:B' }).catch((e: unknown) => e);
    expect(api.bills.size).toBe(1);
    const [first] = [...api.bills.keys()];
    // A adopted it (it cannot tell); B, which created it, does not report it too.
    expect(a).toMatchObject({ status: 'reconciled', billId: first });
    expect(b).toBeInstanceOf(ChargeOutcomeUnknownError);
    expect((b as Error).message).toMatch(/adopted by the charge "export:A"/);
    expect(await storage.ledger.get(chargeLedgerKey(TENANT, 'export:B'))).toMatchObject({ status: 'pending' });

    // B's retry skips A's bill and charges B: two charges, two bills.
    clock.advance(60_001);
    const retried = await mod.billing.charge({ ...exportCharge, idempotencyKey: 'export:B' });
    expect(retried.status).toBe('created');
    expect(retried.billId).not.toBe(first);
    expect(api.bills.size).toBe(2);
  });

  it('two keys reconciling one unowned bill at once: exactly one adopts it', async () => {
    // Two keys' earlier calls died with their claims pending; one matching bill exists
    // (created by one of them, or outside `charge`) and no key owns it.
    const { mod: plain } = moduleFor(storage);
    await plain.billing.bills.create(TENANT, { groupId: 'cld-1', priceCents: 500, currency: 'USD', description: 'Contacts export' });
    for (const key of ['export:A', 'export:B']) {
      await storage.ledger.claim(chargeLedgerKey(TENANT, key), {
        owner: 'dead',
        ttlMs: 1_000,
        intent: {
          kind: 'charge',
          tenant: TENANT,
          groupId: 'cld-1',
          priceCents: 500,
          currency: 'USD',
          description: 'Contacts export',
          units: 1,
          thirdParty: false,
          periodStart: null,
          periodEnd: null,
        },
      });
    }
    clock.advance(1_001);
    const { mod } = moduleFor(storage);
    const results = await Promise.all(['export:A', 'export:B'].map((k) => mod.billing.charge({ ...exportCharge, idempotencyKey: k })));
    expect(results.map((r) => r.status).sort()).toEqual(['created', 'reconciled']);
    expect(new Set(results.map((r) => r.billId)).size).toBe(2);
    expect(api.bills.size).toBe(2);
  });
});

describe('mno.billing.charge: the claim outlives the calls made under it', () => {
  const c = { tenant: TENANT, groupId: 'cld-1', priceCents: 500, currency: 'USD', description: 'Export', idempotencyKey: 'k1' };

  it('caps the POST below the claim TTL: a slow POST cannot overlap a takeover (one bill)', async () => {
    const realTime = memoryAdapter(); // claims expire in real time, like the POST's timeout
    let slow = true;
    const { runtime } = makeRuntime(realTime, [makeTenant(api)]);
    runtime.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const req = new Request(input, init);
      if (req.method === 'POST' && slow) {
        slow = false;
        await delay(3_000, req.signal); // the request is stuck on the way to the platform
      }
      return fetch(req);
    }) as typeof fetch;
    const mod = createAccountModule(runtime, { billing: { charge: { claimTtlMs: 1_000, waitMs: 5_000 } } });
    const results = await Promise.allSettled([
      mod.billing.charge(c),
      delay(50).then(() => mod.billing.charge(c)),
    ]);
    await delay(1_500); // past the first POST's original 3 s
    expect(api.bills.size).toBe(1);
    const [first, second] = results;
    expect(first.status).toBe('rejected');
    const error = (first as PromiseRejectedResult).reason as ChargeOutcomeUnknownError;
    expect(error).toBeInstanceOf(ChargeOutcomeUnknownError);
    expect(error.cause).toBeInstanceOf(ConnectionError);
    expect((error.cause as Error).message).toMatch(/after 750 ms/);
    expect(second).toMatchObject({ status: 'fulfilled', value: { status: 'created', billId: [...api.bills.keys()][0] } });
  });

  it('refreshes the claim before POSTing after a reconciliation that outlived it (no second bill)', async () => {
    let duringList: (() => Promise<unknown>) | null = null;
    const { mod } = moduleFor(storage, {}, (async (input: RequestInfo | URL, init?: RequestInit) => {
      const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
      const response = await fetch(input, init);
      const run = method.toUpperCase() === 'GET' ? duringList : null;
      if (run) {
        duringList = null;
        await run();
      }
      return response;
    }) as typeof fetch);
    api.faults.push({ status: 503, times: 1, method: 'POST' });
    await expect(mod.billing.charge(smsCharge)).rejects.toBeInstanceOf(ChargeOutcomeUnknownError);
    clock.advance(60_001);
    // The recovering call's listing (nothing found) outlives its claim; another call with the
    // key takes over, finds nothing either and charges.
    let other: unknown;
    duringList = async () => {
      clock.advance(60_001);
      other = await mod.billing.charge(smsCharge);
    };
    const recovering = await mod.billing.charge(smsCharge);
    expect(other).toMatchObject({ status: 'created' });
    expect(recovering).toMatchObject({ status: 'replayed', billId: (other as { billId: string }).billId });
    expect(api.bills.size).toBe(1);
  });

  it('leaves the default timeouts alone and caps them below a short claim', () => {
    const accountApi = { connectTimeoutMs: 30_000, timeoutMs: 80_000, retry: { limit: 2, backoffLimitMs: 10_000 } };
    expect(claimedCallTimeouts(accountApi, 120_000)).toEqual({ connectMs: 30_000, totalMs: 80_000 });
    expect(claimedCallTimeouts(accountApi, 60_000)).toEqual({ connectMs: 30_000, totalMs: 45_000 });
    expect(claimedCallTimeouts(accountApi, 1_000)).toEqual({ connectMs: 750, totalMs: 750 });
  });
});

describe('mno.billing.charge: a failure after the bill was created is an unknown outcome', () => {
  const outage = () =>
    new StorageError('ledger failed: connection refused', { adapterId: 'prisma', operation: 'ledger.claim' });

  it.each([
    { step: 'claiming the bill ownership', op: 'claim' as const, keyPrefix: 'chargebill:' },
    { step: 'recording the bill ownership', op: 'complete' as const, keyPrefix: 'chargebill:' },
    { step: 'recording the outcome', op: 'complete' as const, keyPrefix: 'charge:' },
  ])('storage outage while $step - ChargeOutcomeUnknownError (cause: the StorageError), key kept, retry reconciles', async ({
    op,
    keyPrefix,
  }) => {
    const failing = crashingLedger(storage, 1, { op, keyPrefix, error: outage });
    const { mod } = moduleFor(failing);
    const error = await mod.billing.charge(smsCharge).catch((e: unknown) => e);
    expect(failing.crashes).toBe(1);
    expect(error).toBeInstanceOf(ChargeOutcomeUnknownError);
    expect(error).not.toBeInstanceOf(StorageError);
    expect((error as ChargeOutcomeUnknownError).cause).toBeInstanceOf(StorageError);
    expect((error as ChargeOutcomeUnknownError).idempotencyKey).toBe(smsCharge.idempotencyKey);
    const billId = [...api.bills.keys()][0]!;
    expect((error as Error).message).toBe(
      `Charge with idempotency key "${smsCharge.idempotencyKey}": the bill may exist (${billId} was created on the ` +
        'platform) but recording it failed (ledger failed: connection refused). Retry with the same key after 60000 ms ' +
        'to reconcile; it will not bill twice.',
    );
    expect(api.bills.size).toBe(1);
    const key = chargeLedgerKey(TENANT, smsCharge.idempotencyKey);
    expect(await storage.ledger.get(key)).toMatchObject({ status: 'pending', outcome: null });

    clock.advance(60_001);
    expect(await mod.billing.charge(smsCharge)).toMatchObject({ status: 'reconciled', billId });
    expect(api.bills.size).toBe(1);
    expect(posts()).toHaveLength(1);
    expect(await storage.ledger.get(key)).toMatchObject({ status: 'done', outcome: { billId } });
    expect(await storage.ledger.get(chargeBillLedgerKey(TENANT, billId))).toMatchObject({
      status: 'done',
      intent: { idempotencyKey: smsCharge.idempotencyKey },
    });
  });

  it('storage outage recording a bill found after an unclear POST failure - ChargeOutcomeUnknownError, not StorageError', async () => {
    const failing = crashingLedger(storage, 1, { op: 'complete', keyPrefix: 'charge:', error: outage });
    const { mod } = moduleFor(failing);
    api.faults.push({ status: 500, times: 1, method: 'POST', afterProcessing: true });
    const error = await mod.billing.charge(smsCharge).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChargeOutcomeUnknownError);
    expect((error as ChargeOutcomeUnknownError).cause).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(/the bill may exist .* Retry with the same key after 60000 ms/);
    expect(api.bills.size).toBe(1);
    expect(await storage.ledger.get(chargeLedgerKey(TENANT, smsCharge.idempotencyKey))).toMatchObject({ status: 'pending' });
  });
});

describe('mno.billing.charge: aborting (options.signal)', () => {
  const key = chargeLedgerKey(TENANT, smsCharge.idempotencyKey);
  const expectAborted = (error: unknown, message: RegExp) => {
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error).toMatchObject({ code: 'connection_aborted', failure: 'aborted', service: 'account', method: 'POST' });
    expect((error as ConnectionError).url).toBe(`${api.url}/api/v1/account/bills`);
    expect((error as Error).message).toMatch(message);
  };

  it('an already-aborted signal - ConnectionError (aborted), no claim stored, nothing sent, the key stays usable', async () => {
    const { mod } = moduleFor(storage);
    const controller = new AbortController();
    controller.abort();
    const error = await mod.billing.charge(smsCharge, { signal: controller.signal }).catch((e: unknown) => e);
    expectAborted(error, /was aborted before its bill was requested; nothing was charged/);
    expect((error as Error).cause).toBe(controller.signal.reason);
    expect(await storage.ledger.get(key)).toBeNull();
    expect(api.requests).toHaveLength(0);

    const result = await mod.billing.charge(smsCharge);
    expect(result.status).toBe('created');
    expect(api.bills.size).toBe(1);
  });

  it('an abort after the claim but before the POST - the claim is released, nothing sent', async () => {
    const controller = new AbortController();
    const aborting: StorageAdapter = {
      ...storage,
      ledger: {
        get: storage.ledger.get.bind(storage.ledger),
        release: storage.ledger.release.bind(storage.ledger),
        complete: storage.ledger.complete.bind(storage.ledger),
        claim: async (k, options) => {
          const claim = await storage.ledger.claim(k, options);
          controller.abort(); // the caller gives up while the claim is being stored
          return claim;
        },
      },
    };
    const { mod } = moduleFor(aborting);
    const error = await mod.billing.charge(smsCharge, { signal: controller.signal }).catch((e: unknown) => e);
    expectAborted(error, /before its bill was requested/);
    expect(await storage.ledger.get(key)).toBeNull();
    expect(api.requests).toHaveLength(0);
    expect((await moduleFor(storage).mod.billing.charge(smsCharge)).status).toBe('created');
  });

  it("an abort while waiting for another call with the key - ConnectionError (aborted); the other call's charge is untouched", async () => {
    let releasePost!: () => void;
    const postHeld = new Promise<void>((resolve) => {
      releasePost = resolve;
    });
    let postSeen!: () => void;
    const postStarted = new Promise<void>((resolve) => {
      postSeen = resolve;
    });
    const { mod } = moduleFor(storage, {}, (async (input: RequestInfo | URL, init?: RequestInit) => {
      const req = new Request(input, init);
      if (req.method === 'POST') {
        postSeen();
        await postHeld; // the first call's POST is slow
      }
      return fetch(req);
    }) as typeof fetch);
    const first = mod.billing.charge(smsCharge);
    await postStarted; // its claim is stored before its bill is requested
    expect(await storage.ledger.get(key)).toMatchObject({ status: 'pending' });

    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const error = await mod.billing.charge(smsCharge, { signal: controller.signal }).catch((e: unknown) => e);
    expectAborted(error, /aborted while waiting for another call with the same key; nothing was charged by this call/);
    expect((error as Error).cause).toBe(controller.signal.reason);
    expect(await storage.ledger.get(key)).toMatchObject({ status: 'pending' });

    releasePost();
    const result = await first;
    expect(result.status).toBe('created');
    expect(api.bills.size).toBe(1);
    expect(await storage.ledger.get(key)).toMatchObject({ status: 'done', outcome: { billId: result.billId } });
  });
});

describe('mno.billing.charge: currency', () => {
  it('rejects a code that is not ISO 4217 with PayloadValidationError before storing or sending anything', async () => {
    const { mod } = moduleFor(storage);
    const error = await mod.billing.charge({ ...smsCharge, currency: 'XYZ' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PayloadValidationError);
    expect((error as Error).message).toBe('Invalid charge: currency: "XYZ" is not an ISO 4217 currency code');
    expect(api.requests).toHaveLength(0);
    expect(await storage.ledger.get(chargeLedgerKey(TENANT, smsCharge.idempotencyKey))).toBeNull();
    expect((await mod.billing.charge({ ...smsCharge, currency: 'EUR' })).bill).toMatchObject({ currency: 'EUR' });
  });
});
