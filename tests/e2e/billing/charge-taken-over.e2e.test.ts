/**
 * Two SDK instances on one PostgreSQL database, one idempotency key, a slow Account API (the
 * sandbox). Instance A's POST is stuck on the way and reaches the platform late; its claim
 * expires and instance B (a retry of the same charge) takes the key over, finds nothing, and
 * POSTs. A's unknown-outcome reconciliation then finds A's own late bill, which is not the
 * key's recorded outcome (B's is, and the duplicate check cancels A's): A must not report it
 * as the charge's bill ("another call with the same key returns the same billId").
 */
import { prismaAdapter } from '@org/maestrano-adapter-prisma';
import { ChargeOutcomeUnknownError, createAccountModule, type Runtime } from '@org/maestrano-sdk';
import { createTestClock } from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDuplicateChecker } from '../../../packages/sdk/src/billing/duplicates.js';
import { type BillingHarness, startBillingHarness } from './harness.js';

let h: BillingHarness;

beforeAll(async () => {
  h = await startBillingHarness({});
});
afterAll(async () => {
  await h?.close();
});

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => {
    open = r;
  });
  return { open, opened };
}

describe('one idempotency key, two SDK instances, a POST that reaches the platform late', () => {
  it('never returns a bill other than the one the ledger records for the key', async () => {
    const group = await h.sandbox.admin.createGroup({ marketplace: h.tenant, name: 'Late', currency: 'USD' });
    const clock = createTestClock(Date.now());
    const TTL = 60_000;
    const charge = {
      tenant: h.tenant,
      groupId: group.id,
      priceCents: 500,
      currency: 'USD',
      description: 'Contacts export',
      idempotencyKey: `export:${group.id}:req-1`,
    };

    // Instance B: its POST is held until the test lets it through.
    const bPosting = gate();
    const bRelease = gate();
    const fetchB = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const req = new Request(input, init);
      if (req.method === 'POST') {
        bPosting.open();
        await bRelease.opened;
      }
      return fetch(req);
    }) as typeof fetch;
    const runtimeB: Runtime = {
      ...h.mno.runtime,
      storage: prismaAdapter(h.prisma, { clock: clock.now }),
      clock: clock.now,
      instanceId: 'instance-b',
      fetch: fetchB,
    };
    const b = createAccountModule(runtimeB, { billing: { charge: { claimTtlMs: TTL } } });
    let resultB: Promise<unknown> | null = null;

    // Instance A: its POST is stuck on the way (the client gives up: unknown outcome) and is
    // delivered to the platform later; its reconciliation listing runs after B took the key over.
    let late: Request | null = null;
    let listed = false;
    const fetchA = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const req = new Request(input, init);
      if (req.method === 'POST' && !late) {
        late = new Request(req.url, { method: 'POST', headers: req.headers, body: await req.clone().text() });
        throw new TypeError('fetch failed (socket hang up)');
      }
      if (req.method === 'GET' && !listed) {
        listed = true;
        // Meanwhile: A's claim expires, B (a retry of the same charge) takes it over, lists
        // (nothing yet) and POSTs; then A's stuck POST reaches the platform.
        clock.advance(TTL + 1);
        resultB = b.billing.charge(charge);
        await bPosting.opened;
        const delivered = await fetch(late!);
        expect(delivered.status).toBe(200);
      }
      return fetch(req);
    }) as typeof fetch;
    const runtimeA: Runtime = {
      ...h.mno.runtime,
      storage: prismaAdapter(h.prisma, { clock: clock.now }),
      clock: clock.now,
      instanceId: 'instance-a',
      fetch: fetchA,
    };
    const a = createAccountModule(runtimeA, { billing: { charge: { claimTtlMs: TTL } } });

    const resultA = await a.billing.charge(charge).then(
      (v) => ({ ok: true as const, value: v }),
      (e: unknown) => ({ ok: false as const, error: e }),
    );
    bRelease.open();
    const settledB = (await (resultB as Promise<unknown> | null)) as { billId: string; status: string };
    const entry = await h.storage.ledger.get(`charge:${h.tenant}:${charge.idempotencyKey}`);
    const recorded = (entry!.outcome as { billId: string }).billId;
    const bills = await h.sandbox.admin.listBills(group.id);

    expect(settledB.billId).toBe(recorded);
    // The duplicate check B scheduled (recorded under a taken-over claim) runs later and
    // cancels the other bill, the one A returned.
    const check = createDuplicateChecker({ storage: runtimeB.storage, account: (t) => b.account(t), config: b.config, logger: h.mno.runtime.logger });
    const checked = await check({ kind: 'charge', tenant: h.tenant, groupId: group.id, idempotencyKey: charge.idempotencyKey, billId: recorded });
    expect(checked.cancelled).toHaveLength(1);

    // A must not report a bill other than the key's recorded one (the same billId for every
    // call with the key); an unknown outcome (or the recorded bill) is acceptable.
    if (!resultA.ok) {
      expect(resultA.error).toBeInstanceOf(ChargeOutcomeUnknownError);
      expect(String((resultA.error as Error).message)).toContain("another call took the key over");
    } else {
      const got = resultA.value as { billId: string; status: string };
      expect(
        { status: got.status, billId: got.billId, cancelledLater: checked.cancelled.includes(got.billId) },
        `instance A returned ${got.status} ${got.billId}; the ledger records ${recorded} (instance B's); bills: ${bills.map((x) => x.id).join(', ')}`,
      ).toEqual({ status: got.status, billId: recorded, cancelledLater: false });
    }
  }, 30_000);
});
