/**
 * The connector framework end to end: the sandbox's Connec! and notification sender, the app
 * served over loopback HTTP (`mno.handler`), real workers, memory and PostgreSQL storage.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { findFerretDb } from './app.js';
import { type SyncHarness, startSyncHarness, TENANT, waitFor } from './harness.js';

type IdEntry = { id: string; provider: string; realm: string };
const idsOf = (value: unknown): IdEntry[] => (Array.isArray(value) ? (value as IdEntry[]) : []);

const ferretDbMissing = findFerretDb() ? null : 'no ferretdb binary (FERRETDB_BIN, /usr/local/bin/ferretdb or PATH)';
// CI must run the MongoDB variant: there a missing FerretDB fails the file; locally it is skipped (and says why).
if (ferretDbMissing && process.env.CI) throw new Error(`sync e2e: the MongoDB (FerretDB) variant cannot run: ${ferretDbMissing}; CI must run it`);
if (ferretDbMissing) console.warn(`sync e2e: MongoDB (FerretDB) variant skipped: ${ferretDbMissing}`);
const backends = ['memory', 'postgres', 'sqlite', 'mongo'] as const;

for (const storage of backends) {
  describe.skipIf(storage === 'mongo' && ferretDbMissing !== null)(`sync against the sandbox (${storage} storage)`, () => {
    let h: SyncHarness;
    let apiId: string;
    /** POSTs a notification body to the app as Connec! does (Basic auth of the marketplace); the status. */
    let notify: (url: string, body: unknown) => Promise<number>;
    beforeAll(async () => {
      h = await startSyncHarness({ storage });
      apiId = h.sandbox.credentials.marketplaces[0]?.apiId ?? '';
      const market = h.sandbox.credentials.marketplaces[0];
      const auth = `Basic ${Buffer.from(`${market?.apiId}:${market?.apiKey}`).toString('base64')}`;
      notify = async (url, body) => {
        const res = await fetch(url, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
        await res.arrayBuffer();
        return res.status;
      };
    }, 120_000);
    afterAll(async () => {
      await h?.close();
    });

    it('first SSO imports organizations then people, links our ids back, and a second SSO does not re-import (§F1)', async () => {
      const group = await h.sandbox.admin.createGroup({ marketplace: TENANT, name: 'Import Co' });
      const orgs = [];
      for (let i = 0; i < 3; i++) orgs.push(await h.sandbox.admin.createRecord(group.id, 'organizations', { name: `Org ${i}` }));
      for (let i = 0; i < 5; i++) {
        await h.sandbox.admin.createRecord(group.id, 'people', { first_name: `P${i}`, last_name: 'Imported', organization_id: orgs[i % 3]?.id ?? null });
      }
      const user = await h.sandbox.admin.createUser({ memberships: [{ groupId: group.id, role: 'Admin' }] });
      expect(await h.login(user.id, group.id)).toBe(200);
      await h.drain();

      const scope = { tenant: TENANT, groupId: group.id };
      const companyMaps = await h.storage.idMaps.list({ ...scope, entity: 'companies' }, { limit: 100 });
      const contactMaps = await h.storage.idMaps.list({ ...scope, entity: 'contacts' }, { limit: 100 });
      expect(companyMaps).toHaveLength(3);
      expect(contactMaps).toHaveLength(5);
      for (const map of contactMaps) {
        const contact = await h.db.contact(map.localId ?? '');
        expect(contact?.lastName).toBe('Imported');
        expect(companyMaps.map((m) => m.localId)).toContain(contact?.companyId);
        const remote = await h.sandbox.admin.getRecord(group.id, 'people', map.connecId ?? '', { externalIds: true });
        expect(idsOf(remote.id)).toContainEqual({ id: map.localId, provider: apiId, realm: group.id });
      }
      expect(await h.db.duplicateCreates()).toBe(0);
      const cursors = await h.storage.cursors.list(TENANT, group.id);
      expect(cursors.filter((c) => c.kind === 'import').every((c) => c.complete)).toBe(true);

      const writes = await h.db.writeCount();
      // A re-import would write nothing either (every record is unchanged): what it reads tells.
      const reread: string[] = [];
      const stop = h.mno.sync.on((e) => {
        if (e.type === 'import.progress' && e.groupId === group.id) reread.push(`${e.entity}@${e.done}`);
      });
      expect(await h.login(user.id, group.id)).toBe(200);
      await h.drain();
      stop();
      expect(await h.db.writeCount()).toBe(writes);
      expect(reread).toEqual([]);
    }, 90_000);

    it('notifications from Connec! create unknown records and update known ones (§F2, §F3)', async () => {
      const { groupId } = await h.provisionGroup('Notified Co');
      await h.drain();
      const org = await h.sandbox.admin.createRecord(groupId, 'organizations', { name: 'Notified Org' });
      const person = await h.sandbox.admin.createRecord(groupId, 'people', { first_name: 'Jane', last_name: 'Doe', organization_id: org.id ?? null });
      await h.sandbox.admin.waitForDeliveries(10_000);
      await h.drain();
      const scope = { tenant: TENANT, groupId, entity: 'contacts' };
      const map = await h.storage.idMaps.find(scope, { connecId: String(person.id) });
      expect(map?.localId).toBeTruthy();
      const contact = await h.db.contact(map?.localId ?? '');
      expect(contact).toMatchObject({ firstName: 'Jane', lastName: 'Doe' });
      const orgMap = await h.storage.idMaps.find({ ...scope, entity: 'companies' }, { connecId: String(org.id) });
      expect(contact?.companyId).toBe(orgMap?.localId);
      const remote = await h.sandbox.admin.getRecord(groupId, 'people', String(person.id), { externalIds: true });
      expect(idsOf(remote.id)).toContainEqual({ id: map?.localId, provider: apiId, realm: groupId });

      const creates = await h.db.writeCount('create');
      await h.sandbox.admin.updateRecord(groupId, 'people', String(person.id), { job_title: 'CTO' });
      await h.sandbox.admin.waitForDeliveries(10_000);
      await h.drain();
      expect((await h.db.contact(map?.localId ?? ''))?.jobTitle).toBe('CTO');
      expect(await h.db.writeCount('create')).toBe(creates);
      expect(await h.storage.idMaps.list(scope, { limit: 10 })).toHaveLength(1);

      // §F3: the identical notification delivered again writes nothing; an older version with
      // other content (a late delivery) is ignored as stale.
      const delivered = (await h.sandbox.admin.deliveries())
        .filter((d) => d.kind === 'connec.notification' && d.body !== null)
        .flatMap((d) => ((JSON.parse(d.body as string) as { people?: Record<string, unknown>[] }).people ?? []).map((record) => ({ url: d.url, record })))
        .filter(({ record }) => record.job_title === 'CTO' && idsOf(record.id).some((e) => e.id === String(person.id)));
      const last = delivered.at(-1);
      expect(last).toBeDefined();
      const writes = await h.db.writeCount();
      // Its job is purged first (as after the retention period): not the inbox's dedupe, the
      // id map's last applied version must tell the replay.
      await h.storage.jobs.purgeCompleted(new Date(Date.now() + 60_000));
      expect(await notify(last?.url ?? '', { people: [last?.record] })).toBe(200);
      await h.drain();
      expect(await h.db.writeCount()).toBe(writes);
      const older = new Date(Date.parse(String(last?.record.updated_at)) - 3_600_000).toISOString();
      expect(await notify(last?.url ?? '', { people: [{ ...last?.record, job_title: 'Old CTO', updated_at: older }] })).toBe(200);
      await h.drain();
      expect((await h.db.contact(map?.localId ?? ''))?.jobTitle).toBe('CTO');
      expect(await h.db.writeCount()).toBe(writes);
      expect(await h.storage.idMaps.list(scope, { limit: 10 })).toHaveLength(1);
    });

    it('pushes a local record to Connec! with our id, then updates it in place (§F7)', async () => {
      const { groupId } = await h.provisionGroup('Pushing Co');
      await h.drain();
      const localId = await h.db.createContact(null, { firstName: 'Local', lastName: 'Only', jobTitle: 'Dev', companyId: null, updatedAt: new Date() });
      const first = await h.mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: { ...(await h.db.contact(localId)) } });
      expect(first.status).toBe('pushed');
      const remote = await h.sandbox.admin.getRecord(groupId, 'people', first.connecId ?? '', { externalIds: true });
      expect(remote).toMatchObject({ first_name: 'Local', last_name: 'Only', job_title: 'Dev' });
      expect(idsOf(remote.id)).toContainEqual({ id: localId, provider: apiId, realm: groupId });
      const again = await h.mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: { ...(await h.db.contact(localId)), jobTitle: 'Lead' } });
      expect(again).toMatchObject({ status: 'pushed', connecId: first.connecId });
      expect(await h.sandbox.admin.getRecord(groupId, 'people', first.connecId ?? '')).toMatchObject({ job_title: 'Lead' });
      expect(await h.sandbox.admin.listRecords(groupId, 'people')).toHaveLength(1);

      // §F9: Connec! notifies our own push back (same content, our id in it, a newer
      // `updated_at`, another Connec!-managed `code`): no local write.
      const echoed = await h.sandbox.admin.getRecord(groupId, 'people', first.connecId ?? '', { externalIds: true });
      const later = new Date(Date.parse(String(echoed.updated_at)) + 60_000).toISOString();
      const writes = await h.db.writeCount();
      const held = await h.db.contact(localId);
      expect(await notify(`${h.appUrl}/maestrano/connec/notifications/${TENANT}`, { people: [{ ...echoed, updated_at: later, code: 'PE-ECHO' }] })).toBe(200);
      await h.drain();
      expect(await h.db.writeCount()).toBe(writes);
      expect(await h.db.contact(localId)).toEqual(held);
    });

    it('the import resumes after Connec! answers 503 for a while, with no duplicates (§F11)', async () => {
      // Cleared however the test ends: left behind, its 503s failed the next test too.
      onTestFinished(async () => {
        await h.sandbox.admin.clearFaults();
      });
      const group = await h.sandbox.admin.createGroup({ marketplace: TENANT, name: 'Flaky Co' });
      for (let i = 0; i < 120; i++) {
        await h.sandbox.admin.createRecord(group.id, 'people', { first_name: `F${i}`, last_name: 'Flaky' });
      }
      await h.sandbox.admin.waitForDeliveries(20_000);
      // The first two people pages (0 and 50, the second prefetched) are served; the next eight
      // requests answer 503, so the import fails (three client attempts per request) after the
      // first two pages were committed, and again on its retry, before Connec! is back.
      await h.sandbox.admin.addFault({ path: '/api/v2/*/people*', kind: 'latency', latencyMs: 0, count: 2 });
      const outage = await h.sandbox.admin.addFault({ path: '/api/v2/*/people*', kind: 'status', status: 503, count: 8 });
      // The import's committed positions, in order: a resumed import goes on from its checkpoint,
      // one that starts again from the first page re-reads (and re-reports) pages it committed.
      const progress: number[] = [];
      const stop = h.mno.sync.on((e) => {
        if (e.type === 'import.progress' && e.groupId === group.id && e.entity === 'contacts') progress.push(e.done);
      });
      const creates = await h.db.writeCount('create');
      const user = await h.sandbox.admin.createUser({ memberships: [{ groupId: group.id, role: 'Admin' }] });
      expect(await h.login(user.id, group.id)).toBe(200);
      await h.drain(200);
      stop();
      const faults = await h.sandbox.admin.faults();
      expect(faults.find((f) => f.id === outage.id)?.hits).toBe(8);
      await waitFor('all people imported', async () => (await h.storage.idMaps.list({ tenant: TENANT, groupId: group.id, entity: 'contacts' }, { limit: 500 })).length === 120);
      expect((await h.db.writeCount('create')) - creates).toBe(120);
      expect(await h.db.repeatedCreates()).toBe(0);
      expect(await h.db.duplicateCreates()).toBe(0);
      const cursor = await h.storage.cursors.get({ tenant: TENANT, groupId: group.id, entity: 'contacts', kind: 'import' });
      expect(cursor).toMatchObject({ position: 120, complete: true });
      expect(progress).toEqual([50, 100, 120]);
    }, 180_000);

    it('a poll applies changes no notification announced: new records created, edited ones updated, the overlap re-read writes nothing (§F10)', async () => {
      const { groupId } = await h.provisionGroup('Polled Co');
      await h.drain();
      const market = h.sandbox.credentials.marketplaces[0];
      const auth = `Basic ${Buffer.from(`${market?.apiId}:${market?.apiKey}`).toString('base64')}`;
      // Written with the app's own credentials: Connec! does not notify the writer.
      const ops = Array.from({ length: 30 }, (_v, i) => ({ method: 'post', url: `/api/v2/${groupId}/people/`, params: { people: { first_name: `P${i}`, last_name: 'Polled' } } }));
      const created = await fetch(`${h.sandbox.url}/batch`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ sequential: true, ops }) });
      expect(((await created.json()) as { results: { status: number }[] }).results.every((r) => r.status === 201)).toBe(true);
      const scope = { tenant: TENANT, groupId, entity: 'contacts' };
      expect(await h.storage.idMaps.list(scope, { limit: 100 })).toHaveLength(0);

      const report = await h.mno.sync.pollGroup({ tenant: TENANT, groupId });
      expect(report.entities.contacts).toMatchObject({ created: 30, failed: 0 });
      const maps = await h.storage.idMaps.list(scope, { limit: 100 });
      expect(maps.filter((m) => m.localId !== null)).toHaveLength(30);

      // An edit, again without a notification, then two polls: one update, then nothing.
      const target = maps[0];
      const edit = await fetch(`${h.sandbox.url}/api/v2/${groupId}/people/${target?.connecId}`, {
        method: 'PUT',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({ people: { job_title: 'Polled CTO' } }),
      });
      expect(edit.status).toBe(200);
      const writes = await h.db.writeCount();
      await h.mno.sync.pollGroup({ tenant: TENANT, groupId });
      expect((await h.db.contact(target?.localId ?? ''))?.jobTitle).toBe('Polled CTO');
      expect(await h.db.writeCount()).toBe(writes + 1);
      const again = await h.mno.sync.pollGroup({ tenant: TENANT, groupId });
      expect(again.entities.contacts?.fetched).toBeGreaterThan(0);
      expect(await h.db.writeCount()).toBe(writes + 1);
      expect(await h.db.duplicateCreates()).toBe(0);
    }, 120_000);
  });
}
