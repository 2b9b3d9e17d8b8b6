import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type BillingCompany, type BillingGroup, createAccountModule, type SubscriptionPlan, subscriptionLedgerKey } from '../../src/billing/index.js';
import { JobTypes } from '../../src/core/types.js';
import { PayloadValidationError } from '../../src/errors/index.js';
import type { JsonObject, StorageAdapter } from '../../src/storage/adapter.js';
import { createWorker } from '../../src/worker/index.js';
import { memoryAdapter, memoryState } from '../../src/storage/memory.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { makeRuntime, makeTenant, provisionGroup, resetServer } from './helpers.js';

let api: AccountApiServer;
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
  storage = memoryAdapter();
});

const smsCharge = {
  tenant: TENANT,
  groupId: 'cld-1',
  priceCents: 450,
  currency: 'USD',
  description: 'SMS credits (May)',
  idempotencyKey: 'sms-2030-05-cld-1',
};

describe('mno.billing.charge: text no storage can hold', () => {
  it('an idempotency key or description with a NUL or a lone surrogate is refused as bad input: nothing billed, nothing stored', async () => {
    const { runtime } = makeRuntime(storage, [makeTenant(api)]);
    const mod = createAccountModule(runtime, { billing: { accountApi: { retry: { backoffLimitMs: 5 } } } });
    const bad = [
      { ...smsCharge, idempotencyKey: 'sms-2030-05:acme\u0000' },
      { ...smsCharge, idempotencyKey: 'sms-2030-05:acme\uD800' },
      { ...smsCharge, description: 'SMS credits\u0000' },
      { ...smsCharge, description: 'SMS credits \uDC00' },
    ];
    for (const input of bad) {
      const error = await mod.billing.charge(input).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PayloadValidationError);
    }
    // No bill was created on the platform that the SDK could then never record.
    expect(api.bills.size).toBe(0);
    expect(api.requests.filter((r) => r.method === 'POST')).toHaveLength(0);
    expect([...memoryState(storage).ledger.keys()]).toEqual([]);
  });
});

describe('billing.subscribe: a plan no storage can hold', () => {
  it('is an invalid plan: a dead letter after one attempt (onCompanyCreated called once), nothing stored or sent', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    const { runtime } = makeRuntime(storage, [makeTenant(api)]);
    let calls = 0;
    const plan: SubscriptionPlan = { priceCents: 2900, description: 'Pro plan\u0000', currency: 'USD' };
    const mod = createAccountModule(runtime, {
      billing: {
        onCompanyCreated: (_company: BillingCompany, _group: BillingGroup) => {
          calls++;
          return plan;
        },
        subscription: { claimTtlMs: 30_000, retryDelayMs: 10 },
        accountApi: { retry: { backoffLimitMs: 5 } },
      },
    });
    const payload = { tenant: TENANT, groupId: 'cld-1', companyId: 'company-cld-1', group: {} };
    const { id } = await storage.jobs.enqueue({ type: JobTypes.billingSubscribe, tenant: TENANT, groupId: 'cld-1', payload: payload as unknown as JsonObject, maxAttempts: 8 });
    const worker = createWorker(runtime, mod.contribution.jobs ?? {});

    const stats = await worker.drain({ pollIntervalMs: 5, backoff: { baseMs: 0, maxMs: 0 } });

    expect(stats).toMatchObject({ deadLettered: 1, retried: 0 });
    expect(calls).toBe(1);
    expect(await storage.jobs.get(id)).toMatchObject({ status: 'dead', attempts: 1, lastError: { message: expect.stringMatching(/invalid plan.*plan\.description/) } });
    expect(api.recurringBills.size).toBe(0);
    expect(await storage.ledger.get(subscriptionLedgerKey(TENANT, 'cld-1'))).toBeNull();
  });
});
