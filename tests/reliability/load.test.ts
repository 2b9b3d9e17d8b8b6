/**
 * Load:
 * - 200 concurrent SSO first logins across 20 new groups (PostgreSQL storage): exactly 20
 *   companies, 200 users, 200 memberships, one company.created job per group.
 * - A notification storm: records created in Connec! (the sandbox, with the app's own
 *   credentials, so the sandbox itself does not notify), then sent to the app by 16
 *   concurrent senders (batches, retried on 5xx like Connec!), processed by two worker
 *   processes while the storm lasts: every record applied exactly once (app write log and id
 *   maps read from the database). CI: 2,000 records; `RELIABILITY_FULL=1`: 50,000.
 */
import { JobTypes } from '@org/maestrano-sdk';
import { createTestIdp, type TestIdp, type TestUser } from '@org/maestrano-sdk/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLogin } from '../e2e/sso/harness.js';
import { type SyncHarness, startSyncHarness, stopChild, TENANT, waitFor } from '../e2e/sync/harness.js';
import { pgUnavailableReason } from './lib/pg.js';
import { FULL, report, size } from './lib/report.js';
import { type SsoTarget, startSsoTarget } from './lib/sso.js';

const unavailable = await pgUnavailableReason();
// CI must run these tests: there a missing PostgreSQL fails the file instead of skipping it.
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);
if (unavailable) console.warn(`[reliability/load] skipped: ${unavailable}`);

describe.skipIf(unavailable !== null)('load: concurrent first logins', () => {
  let idp: TestIdp;
  let t: SsoTarget;
  const LOGINS = 200;
  const GROUPS = 20;
  beforeAll(async () => {
    idp = createTestIdp();
    t = await startSsoTarget({
      tenants: (appUrl) => [idp.marketplace({ name: 'rel-load', appHost: appUrl, apiId: 'app-rel-load', apiKey: 'rel-load-key' })],
      // 200 logins share 10 pooled connections: an operation's bound (15 s by default) counts
      // its wait for a connection, which on a loaded 2-core CI machine (the test took 43 s)
      // exceeded it: 26 logins answered 503 storage_unavailable though the database answered
      // every query. The bound guards against a database that stops answering, which this test
      // is not about; it stays below the test's timeout (120 s).
      operationTimeoutMs: 90_000,
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it(`${LOGINS} concurrent first logins across ${GROUPS} new groups -> exactly ${GROUPS} companies`, async () => {
    t.app.createCompanyDelayMs = 20;
    const users = Array.from({ length: LOGINS }, (_v, i): TestUser => ({ uid: `usr-load-${i}`, email: `load${i}@load.example`, groupUid: `cld-load-${i % GROUPS}` }));
    // Every browser starts its login first; then all 200 responses are posted at once.
    const started = await Promise.all(users.map((u) => startLogin(t.initUrl('rel-load', u.groupUid))));
    const results = await Promise.all(
      users.map(async (u, i) => {
        const s = started[i]!;
        const { samlResponse, acsUrl } = idp.respondTo(s.location, u);
        const res = await fetch(acsUrl, { method: 'POST', body: new URLSearchParams({ SAMLResponse: samlResponse }), headers: { cookie: s.cookie }, redirect: 'manual' });
        return { status: res.status, body: (await res.json()) as { companyId?: string } };
      }),
    );
    const statuses = results.map((r) => r.status);
    const failed = results.filter((r) => r.status !== 200);
    if (failed.length > 0) console.warn('[reliability/load] failed logins', failed.length, JSON.stringify(failed.slice(0, 5)));
    const companies = await t.db.sql<{ n: number; d: number }>("SELECT count(*)::int AS n, count(DISTINCT company_id)::int AS d FROM maestrano_groups WHERE tenant = 'rel-load'");
    const usersRows = await t.db.sql<{ n: number }>("SELECT count(*)::int AS n FROM maestrano_users WHERE tenant = 'rel-load'");
    const memberships = await t.db.sql<{ n: number }>("SELECT count(*)::int AS n FROM maestrano_memberships WHERE tenant = 'rel-load'");
    const jobs = await t.db.sql<{ n: number }>('SELECT count(*)::int AS n FROM maestrano_jobs WHERE type = $1', [JobTypes.companyCreated]);
    const appCompanies = t.app.companies.size;
    const duplicates = Math.max(0, appCompanies - GROUPS) + Math.max(0, (companies[0]?.n ?? 0) - GROUPS) + Math.max(0, (usersRows[0]?.n ?? 0) - LOGINS);
    const lost = Math.max(0, LOGINS - (usersRows[0]?.n ?? 0)) + Math.max(0, GROUPS - (companies[0]?.n ?? 0));
    report({ area: 'load', name: `${LOGINS} concurrent first logins / ${GROUPS} groups`, casesTried: LOGINS, acceptedCorrectly: statuses.filter((s) => s === 200).length, recordsExpected: LOGINS + GROUPS, recordsLost: lost, duplicates });
    expect(statuses).toEqual(users.map(() => 200));
    expect(companies).toEqual([{ n: GROUPS, d: GROUPS }]);
    expect(appCompanies).toBe(GROUPS);
    expect(new Set(results.map((r) => r.body.companyId)).size).toBe(GROUPS);
    expect(usersRows).toEqual([{ n: LOGINS }]);
    expect(memberships).toEqual([{ n: LOGINS }]);
    expect(jobs).toEqual([{ n: GROUPS }]);
  });
});

describe.skipIf(unavailable !== null)('load: notification storm', () => {
  let h: SyncHarness;
  beforeAll(async () => {
    h = await startSyncHarness({ storage: 'postgres' });
  });
  afterAll(async () => {
    await h?.close();
  });

  // The project's 120 s (in `npm test`) cut the drain's own wait (300 s) short on a loaded 2-core
  // machine, where the storm and its drain took longer than the setup left of it.
  it('N records from 16 senders with two worker processes: all applied exactly once', { timeout: FULL ? undefined : 360_000 }, async () => {
    const N = size(2_000, Number(process.env.RELIABILITY_STORM_RECORDS ?? 50_000));
    const SENDERS = 16;
    const BATCH = 50;
    const { groupId } = await h.provisionGroup('Storm Co');
    await h.drain();
    const market = h.sandbox.credentials.marketplaces[0]!;
    const auth = `Basic ${Buffer.from(`${market.apiId}:${market.apiKey}`).toString('base64')}`;

    // Create the records in Connec! with the app's own credentials (no sandbox notification).
    for (let start = 0; start < N; start += 200) {
      const ops = Array.from({ length: Math.min(200, N - start) }, (_v, i) => ({
        method: 'post',
        url: `/api/v2/${groupId}/people/`,
        params: { people: { first_name: `S${start + i}`, last_name: 'Storm' } },
      }));
      const res = await fetch(`${h.sandbox.url}/batch`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ sequential: true, ops }) });
      const body = (await res.json()) as { results: { status: number }[] };
      expect(body.results.every((r) => r.status === 201)).toBe(true);
    }
    const records = await h.sandbox.admin.listRecords(groupId, 'people', { externalIds: true, limit: N + 10 });
    expect(records).toHaveLength(N);
    const connecIds = records.map((r) => {
      const ids = r.id as { id: string; provider: string }[];
      return ids.find((e) => e.provider === 'connec')?.id ?? '';
    });
    const before = await h.db.writeCount('create');

    // The SDK's default slots (4 batches of up to 100 records each, per process).
    const workers = [await h.spawnWorker(), await h.spawnWorker()];
    const queue: object[][] = [];
    for (let i = 0; i < records.length; i += BATCH) queue.push(records.slice(i, i + BATCH));
    let retried = 0;
    let delivered = 0;
    const sender = async () => {
      for (let batch = queue.shift(); batch; batch = queue.shift()) {
        for (let attempt = 0; ; attempt++) {
          const res = await fetch(`${h.appUrl}/maestrano/connec/notifications/${TENANT}`, {
            method: 'POST',
            headers: { authorization: auth, 'content-type': 'application/json' },
            body: JSON.stringify({ people: batch }),
          }).catch(() => null);
          await res?.arrayBuffer();
          if (res?.status === 200) break;
          if (res && res.status < 500) throw new Error(`notification refused with ${res.status}`);
          if (attempt > 50) throw new Error('notification never accepted');
          retried++;
          await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
        }
        delivered += batch.length;
      }
    };
    await Promise.all(Array.from({ length: SENDERS }, () => sender()));
    expect(delivered).toBe(N);
    // What autovacuum does on a production server once the backlog is in: this machine's
    // PostgreSQL runs with autovacuum off, and without it every claim plans for an empty table
    // and walks dead index entries (~80 instead of ~500 records/s; docs/storage-adapters.md).
    const client = new pg.Client({ connectionString: h.databaseUrl });
    await client.connect();
    for (const table of ['maestrano_jobs', 'maestrano_job_guards', 'maestrano_locks', 'maestrano_id_maps']) await client.query(`VACUUM ANALYZE ${table}`);
    await client.end();

    await waitFor(
      'the inbox to drain',
      async () => {
        const c = await h.storage.jobs.counts({ type: JobTypes.connecRecord });
        return c.pending === 0 && c.running === 0;
      },
      Math.max(300_000, N * 60),
    );
    await Promise.all(workers.map((w) => stopChild(w)));

    const created = (await h.db.writeCount('create')) - before;
    const maps = await h.storage.idMaps.list({ tenant: TENANT, groupId, entity: 'contacts' }, { limit: N + 10 });
    const mapped = new Set(maps.filter((m) => m.localId !== null).map((m) => m.connecId));
    const lost = connecIds.filter((id) => !mapped.has(id)).length;
    const duplicates = (await h.db.duplicateCreates()) + Math.max(0, created - N) + (maps.length - new Set(maps.map((m) => m.localId)).size);
    const writers = await h.db.writerPids();
    report({ area: 'load', name: `notification storm: ${N} records, ${SENDERS} senders, 2 worker processes`, casesTried: Math.ceil(N / BATCH), acceptedCorrectly: Math.ceil(N / BATCH), recordsExpected: N, recordsLost: lost, duplicates });
    console.info(`[reliability/load] storm: ${N} records, ${retried} sender retries, writers ${writers.join(',')}`);
    expect({ lost, duplicates, created }).toEqual({ lost: 0, duplicates: 0, created: N });
    expect(writers).toEqual(expect.arrayContaining(workers.map((w) => w.pid)));
    expect((await h.storage.jobs.counts({ type: JobTypes.connecRecord })).dead).toBe(0);
  });
});
