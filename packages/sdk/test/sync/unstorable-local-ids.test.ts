/**
 * Local ids storage cannot key (an unpaired UTF-16 surrogate, as a user-entered code cut in the
 * middle of an emoji has; or over 1,024 bytes, past which an id map's index entry nears
 * PostgreSQL's limit): as a record's own id, as a reference a mapper sends, or as the id
 * `local.create` returns. The record fails alone (a storage call would refuse the id with a
 * StorageError and fail the whole batch or page, retried for ever). Sub-record ids returned by
 * `local.update` are dropped from the link-back instead (the update is applied already).
 * Long ids within the bound (300 characters) are fine: storage holds them.
 */
import { describe, expect, it } from 'vitest';
import { createHarness, GROUP, provisionGroup, TENANT } from './harness.js';

const BAD_ID = `org-\uD83D`; // 'org-😀' cut after its first UTF-16 unit

describe('a local record whose id storage cannot hold', () => {
  it('fails alone in pushMany: the other records of the batch are pushed', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const good = { id: 'org-good', name: 'Good Pty', code: null, updatedAt: new Date() };
    const bad = { id: BAD_ID, name: 'Bad Pty', code: null, updatedAt: new Date() };
    const outcome = await h.sync.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'companies', records: [good, bad] }).then(
      (results) => results.map((r) => r.status),
      (error: unknown) => `threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
    );
    expect(outcome).toEqual(['pushed', 'failed']);
  });

  it('fails alone in the import: the import completes (partial), it is not retried for ever', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.app.companies.set('org-good', { id: 'org-good', name: 'Good Pty', code: null, updatedAt: new Date() });
    h.app.companies.set(BAD_ID, { id: BAD_ID, name: 'Bad Pty', code: null, updatedAt: new Date() });
    const outcome = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP }).then(
      (report) => ({ status: report.status, pushed: report.entities.companies?.pushed, failed: report.entities.companies?.failed }),
      (error: unknown) => `threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
    );
    expect(outcome).toMatchObject({ pushed: 1, failed: 1 });
  });

  it('as a reference a mapper sends: that record fails alone, naming the reference', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const contact = (id: string, companyId: string) => ({ id, firstName: 'A', lastName: id, jobTitle: null, email: null, companyId, updatedAt: new Date() });
    const results = await h.sync.api.pushMany({
      tenant: TENANT,
      groupId: GROUP,
      entity: 'contacts',
      records: [contact('per-good', 'org-1'), contact('per-bad', 'x'.repeat(1025)), contact('per-long-ref', 'y'.repeat(300))],
    });
    expect(results.map((r) => r.status)).toEqual(['pushed', 'failed', 'pushed']);
    expect(results[1]?.error).toContain('organization_id');
    expect(results[1]?.error).toContain('longer than 1024 bytes');
  });

  it('as the id local.create returns: that record fails alone, the rest of the page is applied', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.connec.seed(GROUP, 'organizations', { name: 'Kept Pty' });
    h.connec.seed(GROUP, 'organizations', { name: 'Bad Pty' });
    const nextId = h.app.nextId.bind(h.app);
    h.app.nextId = (prefix: string) => (h.app.companies.size === 1 ? BAD_ID : nextId(prefix));
    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect(report.entities.companies).toMatchObject({ created: 1, failed: 1 });
    expect(report.failures.map((f) => f.message).join(' ')).toContain('unpaired UTF-16 surrogate');
    const maps = await h.storage.idMaps.list({ tenant: TENANT, groupId: GROUP, entity: 'companies' }, { limit: 10 });
    expect(maps.map((m) => m.localId)).toEqual(['org-1']);
  });

  it('a local id of 300 characters is no problem: pushed and linked', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const long = `org-${'x'.repeat(296)}`;
    const [result] = await h.sync.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'companies', records: [{ id: long, name: 'Long Pty', code: null, updatedAt: new Date() }] });
    expect(result).toMatchObject({ status: 'pushed', error: null });
    expect((await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'companies' }, { localId: long }))?.connecId).toBeTruthy();
  });

  it('as a sub-record id local.update returns: dropped from the link-back, the run completes even when the link-back fails', async () => {
    const warnings: Record<string, unknown>[] = [];
    const logger = {
      debug() {},
      info() {},
      warn: (message: string, fields: Record<string, unknown> = {}) => {
        if (message.includes('sub-record ids storage cannot hold')) warnings.push(fields);
      },
      error() {},
    };
    const h = await createHarness({ logger });
    await provisionGroup(h.storage);
    const inv = h.connec.seed(GROUP, 'invoices', { transaction_number: 'INV-1', lines: [{ description: 'first', quantity: 1 }] });
    expect((await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP })).entities.invoices).toMatchObject({ created: 1 });
    const connecId = (inv.id as { id: string; provider: string }[]).find((e) => e.provider === 'connec')!.id;
    // Another app adds a line; the app gives it an id storage cannot hold, and the link-back fails.
    const current = h.connec.find(GROUP, 'invoices', connecId)!;
    h.connec.edit(GROUP, 'invoices', connecId, { lines: [...(current.lines as unknown[]), { description: 'second', quantity: 2 }] });
    const nextId = h.app.nextId.bind(h.app);
    h.app.nextId = (prefix: string) => (prefix === 'ln' ? BAD_ID : nextId(prefix));
    h.connec.rejectOp = (op) => (op.collection === 'invoices' && op.method === 'put' ? { status: 503, error: 'unavailable' } : null);
    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP, full: true });
    expect(report.entities.invoices).toMatchObject({ updated: 1 });
    // Nothing stored holds the id storage cannot hold (no link-back of it, so no retry of one).
    const jobs = await h.storage.jobs.claim({ worker: 'probe', limit: 50, leaseMs: 1_000 });
    expect(jobs.filter((j) => JSON.stringify(j.payload).includes(BAD_ID))).toEqual([]);
    expect(warnings).toEqual([expect.objectContaining({ entity: 'invoices', dropped: 1 })]);
  });
});

describe('a local.create that throws something with no text form', () => {
  it('fails that record alone, naming the callback; the rest of the page is applied', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.connec.seed(GROUP, 'organizations', { name: 'Kept Pty' });
    h.connec.seed(GROUP, 'organizations', { name: 'Odd Pty' });
    const nextId = h.app.nextId.bind(h.app);
    h.app.nextId = (prefix: string) => {
      // A null-prototype object: String() of it throws.
      if (h.app.companies.size === 1) throw Object.create(null);
      return nextId(prefix);
    };
    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect(report.entities.companies).toMatchObject({ created: 1, failed: 1 });
    expect(report.failures.map((f) => f.message).join(' ')).toContain('local.create of "companies" threw');
  });
});
