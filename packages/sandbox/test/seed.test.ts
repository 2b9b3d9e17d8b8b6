import { afterAll, describe, expect, it } from 'vitest';
import { type Sandbox, SEED_EPOCH, startSandbox } from '../src/index.js';

describe('seed generator', () => {
  const started: Sandbox[] = [];
  afterAll(async () => {
    for (const s of started) await s.stop();
  });

  it('is deterministic: the same size yields the same groups, users and records; references point at seeded records', async () => {
    const a = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:9', seed: 1500 });
    const b = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:9', seed: 1500 });
    started.push(a, b);
    expect(a.seeded).toEqual(b.seeded);
    expect(a.seeded?.records).toBe(1500);
    expect(await a.admin.listGroups()).toEqual(await b.admin.listGroups());
    for (const coll of ['organizations', 'people', 'items', 'invoices', 'payments']) {
      const ra = await a.admin.listRecords('cld-sbx1', coll, { limit: 100_000 });
      const rb = await b.admin.listRecords('cld-sbx1', coll, { limit: 100_000 });
      expect(ra.length, coll).toBeGreaterThan(0);
      expect(ra, coll).toEqual(rb);
    }
    const orgIds = new Set((await a.admin.listRecords('cld-sbx1', 'organizations', { limit: 100_000 })).map((r) => r.id));
    const itemIds = new Set((await a.admin.listRecords('cld-sbx1', 'items', { limit: 100_000 })).map((r) => r.id));
    const people = await a.admin.listRecords('cld-sbx1', 'people', { limit: 100_000 });
    const peopleIds = new Set(people.map((r) => r.id));
    expect(people.every((p) => orgIds.has(p.organization_id as string))).toBe(true);
    const invoices = await a.admin.listRecords('cld-sbx1', 'invoices', { limit: 100_000 });
    for (const inv of invoices) {
      expect(peopleIds.has(inv.person_id as string)).toBe(true);
      for (const line of inv.lines as Array<{ id: string; item_id: string }>) {
        expect(itemIds.has(line.item_id)).toBe(true);
        expect(line.id).toMatch(/^[0-9a-f-]{36}$/);
      }
    }
    const invoiceIds = new Set(invoices.map((r) => r.id));
    const payments = await a.admin.listRecords('cld-sbx1', 'payments', { limit: 100_000 });
    for (const p of payments) {
      const linked = (p.payment_lines as Array<{ linked_transactions: Array<{ id: string; class: string }> }>)[0]?.linked_transactions[0];
      expect(linked?.class).toBe('Invoice');
      expect(invoiceIds.has(linked?.id ?? '')).toBe(true);
    }
    const times = invoices.map((r) => Date.parse(String(r.created_at)));
    expect(Math.min(...times)).toBeGreaterThanOrEqual(SEED_EPOCH);
    const users = await a.admin.listUsers();
    expect(users.find((u) => u.id === 'usr-sbx1')?.memberships.length).toBe(2);
  });

  it('a different size gives a different data set', async () => {
    const c = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:9', seed: 1501 });
    started.push(c);
    const first = started[0];
    if (!first) throw new Error('no first sandbox');
    const x = await c.admin.listRecords('cld-sbx1', 'organizations', { limit: 1 });
    const y = await first.admin.listRecords('cld-sbx1', 'organizations', { limit: 1 });
    expect(x[0]?.id).not.toBe(y[0]?.id);
  });
});
