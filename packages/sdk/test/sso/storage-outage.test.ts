/**
 * Storage outages during SSO: the consume route answers 503 `storage_unavailable` (the login
 * can succeed once the database is back), leaks nothing of the adapter's error, and records
 * nothing; the other SSO routes do not touch storage and keep working.
 */
import { memoryAdapter, SsoError, type StorageAdapter, StorageError, type StorageOperation } from '@org/maestrano-sdk';
import type { TestUser } from '@org/maestrano-sdk/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { proxyStorage } from '../storage-proxy.js';
import { type Harness, type LoginAnswer, startHarness } from './harness.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100' };

/** What an adapter's message may carry (host, driver text, a secret) and the browser must never see. */
const DRIVER_DETAIL = 'connect ECONNREFUSED 10.0.0.5:5432 (password=hunter2)';

/**
 * `memoryAdapter()` whose operations throw, while `isDown(operation)` says so, the
 * `StorageError` an adapter throws when its database is unreachable.
 */
function outageStorage(isDown: (operation: StorageOperation) => boolean): { adapter: StorageAdapter; inner: StorageAdapter; failed: string[] } {
  const inner = memoryAdapter();
  const failed: string[] = [];
  const adapter = proxyStorage(inner, async (operation, call) => {
    if (isDown(operation)) {
      failed.push(operation);
      throw new StorageError(`${operation} failed: ${DRIVER_DETAIL}`, { adapterId: inner.id, operation, cause: new Error(DRIVER_DETAIL) });
    }
    return call();
  });
  return { adapter, inner, failed };
}

function expectUnavailable(res: LoginAnswer): void {
  expect(res.status).toBe(503);
  expect(res.body).toEqual({ error: 'storage_unavailable', message: 'Sign-in is temporarily unavailable, please try again in a moment' });
  expect(JSON.stringify(res.body)).not.toMatch(/ECONNREFUSED|10\.0\.0\.5|hunter2|StorageError|failed:/);
}

/** No group, user or membership recorded, no login; `jobs` is how many (deduplicated) jobs may be pending. */
async function expectNothingRecorded(h: Harness, inner: StorageAdapter, jobs = 0): Promise<void> {
  expect(await inner.groups.list(h.tenant)).toEqual([]);
  expect(await inner.users.get(h.tenant, alice.uid)).toBeNull();
  expect(await inner.users.listMemberships(h.tenant, { uid: alice.uid })).toEqual([]);
  expect(await inner.jobs.counts()).toMatchObject({ pending: jobs });
  expect(h.logins).toEqual([]);
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('SSO consume while storage is unavailable', () => {
  it('answers 503 storage_unavailable when the database is down, provisions nothing, and works once it is back', async () => {
    let down = true;
    const storage = outageStorage(() => down);
    h = await startHarness({ storage: storage.adapter });

    expectUnavailable(await h.login(alice));
    expect(storage.failed).toEqual(['replay.remember']);
    expect(h.app.calls).toEqual([]);
    await expectNothingRecorded(h, storage.inner);

    down = false;
    const res = await h.login(alice);
    expect(res.status).toBe(200);
    expect(await storage.inner.users.get(h.tenant, alice.uid)).toMatchObject({ uid: alice.uid });
  });

  it('answers 503 when storage fails while provisioning, before any hook ran', async () => {
    let down = true;
    const storage = outageStorage((operation) => down && operation.startsWith('users.'));
    h = await startHarness({ storage: storage.adapter });

    expectUnavailable(await h.login(alice));
    expect(storage.failed[0]).toBe('users.listMemberships');
    expect(h.app.calls).toEqual([]);
    await expectNothingRecorded(h, storage.inner);

    down = false;
    expect((await h.login(alice)).status).toBe(200);
    expect(h.app.count('createCompany')).toBe(1);
  });

  it('answers 503 (not provisioning_failed 500) when storage fails after createCompany; the retry reuses its idempotency key', async () => {
    let down = true;
    const storage = outageStorage((operation) => down && operation === 'groups.complete');
    h = await startHarness({ storage: storage.adapter });

    expectUnavailable(await h.login(alice));
    expect(storage.failed).toEqual(['groups.complete']);
    // The app's hook ran; the SDK recorded no group (its claim was released), no user and no
    // login. Only the company.created job is stored (enqueued before the group completes, by design).
    expect(h.app.count('createCompany')).toBe(1);
    expect(h.app.count('createUser')).toBe(0);
    await expectNothingRecorded(h, storage.inner, 1);

    down = false;
    expect((await h.login(alice)).status).toBe(200);
    expect(new Set(h.app.calls.filter((c) => c.hook === 'createCompany').map((c) => c.key)).size).toBe(1);
    expect(h.app.companies.size).toBe(1);
    expect(await storage.inner.groups.list(h.tenant)).toHaveLength(1);
    expect(await storage.inner.jobs.counts()).toMatchObject({ pending: 1 });
  });

  it('hands sso.onError a typed SsoError (storage_unavailable, 503) whose cause is the adapter error', async () => {
    const seen: SsoError[] = [];
    const storage = outageStorage(() => true);
    h = await startHarness({
      storage: storage.adapter,
      sso: {
        onError: (error) => {
          seen.push(error);
          return new Response('<p>Try again in a moment</p>', { status: error.status, headers: { 'content-type': 'text/html' } });
        },
      },
    });

    const res = await h.login(alice);
    expect(res.status).toBe(503);
    expect(res.body['text']).toBe('<p>Try again in a moment</p>');
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(SsoError);
    expect(seen[0]).toMatchObject({ code: 'sso_failed', reason: 'storage_unavailable', status: 503 });
    expect(seen[0]?.cause).toBeInstanceOf(StorageError);
    expect(seen[0]?.cause).toMatchObject({ operation: 'replay.remember' });
  });

  it('the metadata, SAML metadata and init routes do not touch storage and keep answering', async () => {
    const storage = outageStorage(() => true);
    h = await startHarness({ storage: storage.adapter });
    const authorization = `Basic ${Buffer.from('app-test-1:test-api-key-1').toString('base64')}`;

    const metadata = await fetch(`${h.baseUrl}/maestrano/metadata/${h.tenant}`, { headers: { authorization } });
    expect(metadata.status).toBe(200);
    await metadata.body?.cancel();
    const saml = await fetch(`${h.baseUrl}/maestrano/auth/saml/metadata/${h.tenant}`);
    expect(saml.status).toBe(200);
    await saml.body?.cancel();
    expect((await h.init()).status).toBe(302);
    expect(storage.failed).toEqual([]);
  });
});
