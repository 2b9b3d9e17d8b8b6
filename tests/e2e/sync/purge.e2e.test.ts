/**
 * Account deletion end to end (CONNECTORS §F14): the sandbox cancels a group and sends
 * `DELETE /maestrano/account/groups/:id/:tenant` over real HTTP; the app stores a `sync.purge`
 * job; a worker drops the group's id maps and cursors from PostgreSQL (read back with SQL).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SyncHarness, startSyncHarness, TENANT } from './harness.js';

describe('account deletion purges the group\'s sync state (PostgreSQL storage)', () => {
  let h: SyncHarness;
  beforeAll(async () => {
    h = await startSyncHarness({ storage: 'postgres' });
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  /** Rows of the adapter's own tables, read with SQL (not through the adapter). */
  async function rows(groupId: string): Promise<{ idMaps: number; cursors: number }> {
    const count = async (table: string) => {
      const res = await h.db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table} WHERE tenant = $1 AND group_id = $2`, [TENANT, groupId]);
      return Number(res.rows[0]?.n ?? 0);
    };
    return { idMaps: await count('maestrano_id_maps'), cursors: await count('maestrano_cursors') };
  }

  /** A group with Connec! records, provisioned by SSO and imported. */
  async function importedGroup(name: string): Promise<string> {
    const group = await h.sandbox.admin.createGroup({ marketplace: TENANT, name });
    const org = await h.sandbox.admin.createRecord(group.id, 'organizations', { name: `${name} Org` });
    for (let i = 0; i < 4; i++) {
      await h.sandbox.admin.createRecord(group.id, 'people', { first_name: `P${i}`, last_name: name, organization_id: org.id ?? null });
    }
    const user = await h.sandbox.admin.createUser({ memberships: [{ groupId: group.id, role: 'Admin' }] });
    expect(await h.login(user.id, group.id)).toBe(200);
    await h.drain();
    return group.id;
  }

  it('the sandbox deletes a group: its id maps and cursors are gone after the worker ran, another group keeps its own', async () => {
    const groupId = await importedGroup('Leaving Co');
    const otherId = await importedGroup('Staying Co');
    const before = await rows(groupId);
    expect(before.idMaps).toBe(5);
    expect(before.cursors).toBeGreaterThan(0);
    const other = await rows(otherId);
    expect(other.idMaps).toBe(5);

    const { delivery } = await h.sandbox.admin.cancelGroup(groupId, { webhook: true });
    expect(delivery).not.toBeNull();
    await h.sandbox.admin.waitForDeliveries();
    const delivered = (await h.sandbox.admin.deliveries()).find((d) => d.id === delivery?.id);
    expect(delivered?.state).toBe('delivered');
    expect(delivered?.attempts.at(-1)?.status).toBe(200);
    expect((await h.storage.groups.get(TENANT, groupId))?.status).toBe('cancelled');
    expect(await h.storage.jobs.counts({ type: 'sync.purge' })).toMatchObject({ pending: 1, done: 0 });

    await h.drain();
    expect(await rows(groupId)).toEqual({ idMaps: 0, cursors: 0 });
    expect(await rows(otherId)).toEqual(other);
    // Done, and its sweep scheduled a minute later (past the record locks' lease).
    expect(await h.storage.jobs.counts({ type: 'sync.purge' })).toMatchObject({ pending: 1, done: 1, dead: 0 });

    // Maestrano resends the webhook: success, no second job, nothing else removed.
    const resent = await h.sandbox.admin.triggerWebhook({ type: 'group.deleted', groupId });
    await h.sandbox.admin.waitForDeliveries();
    const replay = (await h.sandbox.admin.deliveries()).find((d) => d.id === resent.id);
    expect(replay?.attempts.at(-1)?.status).toBe(200);
    await h.drain();
    expect(await h.storage.jobs.counts({ type: 'sync.purge' })).toMatchObject({ pending: 1, done: 1 });
    expect(await rows(otherId)).toEqual(other);
  }, 120_000);
});
