/**
 * Local ids storage cannot key (an unpaired UTF-16 surrogate, as a user-entered code cut in the
 * middle of an emoji has; or over 255 characters): as a record's own id, as a reference a
 * mapper sends, or as the id `local.create` returns. The record fails alone (a storage call
 * would refuse the id with a StorageError and fail the whole batch or page, retried for ever).
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
      records: [contact('per-good', 'org-1'), contact('per-bad', 'x'.repeat(300))],
    });
    expect(results.map((r) => r.status)).toEqual(['pushed', 'failed']);
    expect(results[1]?.error).toContain('organization_id');
    expect(results[1]?.error).toContain('longer than 255 characters');
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
});
