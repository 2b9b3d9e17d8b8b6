/**
 * A group provisioned without the org uid (an IdP that sends no `group_org_uid`). Connec!'s own
 * id entries have the org uid as realm (PROTOCOL §6.6): they were sent with `realm: ''`, which
 * reads as an id of another realm. A link-back takes the realm from the record's `channel_id`;
 * a push leaves Connec!'s entries out (the op's path names the record, our entry the rest).
 */
import { describe, expect, it } from 'vitest';
import type { StorageAdapter } from '@org/maestrano-sdk';
import { A, C, createHarness, GROUP, ORG_UID, TENANT } from './harness.js';

async function provisionWithoutOrgUid(storage: StorageAdapter): Promise<void> {
  const claim = await storage.groups.claim(TENANT, GROUP, { owner: 'test', ttlMs: 60_000 });
  if (claim.state !== 'claimed') throw new Error('group already provisioned');
  await storage.groups.complete(TENANT, GROUP, 'test', { companyId: `co-${GROUP}`, orgUid: null, settings: {} });
}

const scope = (entity: string) => ({ tenant: TENANT, groupId: GROUP, entity });
const realms = (value: unknown): string[] => (Array.isArray(value) ? (value as { realm: string }[]).map((e) => e.realm) : []);

describe('a group whose org uid is unknown', () => {
  it('a plain-id notification is linked back with the realm its channel_id gives', async () => {
    const h = await createHarness();
    await provisionWithoutOrgUid(h.storage);
    h.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o-1');
    await h.notify({ organizations: [{ id: 'o-1', name: 'Acme', group_id: GROUP, channel_id: ORG_UID, updated_at: '2016-10-04T00:36:24Z' }] });
    await h.drain();
    const localId = (await h.storage.idMaps.find(scope('companies'), { connecId: 'o-1' }))?.localId ?? '';
    const put = h.connec.batches.flat().find((op) => op.method === 'put' && op.id === 'o-1');
    expect(put?.record.id).toEqual([C('o-1'), A(localId)]);
  });

  it('a push sends no Connec! id entry with an empty realm, for the record or its references', async () => {
    const h = await createHarness();
    await provisionWithoutOrgUid(h.storage);
    await h.storage.idMaps.insert({ ...scope('companies'), connecId: 'o-17', localId: 'org-17' });
    h.connec.seed(GROUP, 'people', { first_name: 'Old', id: [A('per-55')] }, 'p55');
    await h.storage.idMaps.insert({ ...scope('contacts'), connecId: 'p55', localId: 'per-55' });
    const contact = { id: 'per-55', firstName: 'Ann', lastName: 'Lee', jobTitle: null, email: null, companyId: 'org-17', updatedAt: new Date() };
    expect((await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: contact })).status).toBe('pushed');
    const op = h.connec.batches.flat().find((o) => o.id === 'p55');
    expect(op?.method).toBe('put');
    expect(realms(op?.record.id)).not.toContain('');
    expect(op?.record.id).toEqual([A('per-55')]);
    expect(op?.record.organization_id).toEqual([A('org-17')]);
  });
});
