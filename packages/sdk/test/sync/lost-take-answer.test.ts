/**
 * A lock or claim write that commits but whose answer is lost (the connection dropped after
 * COMMIT): the caller sees a failure, yet the storage holds the lock for an owner nobody knows.
 * The caller gives it back as it fails, so the next attempt (a webhook's retry, the next login,
 * the next import) runs at once instead of waiting for the TTL (minutes).
 */
import { ImportBusyError, memoryAdapter, type StorageAdapter, StorageError, type StorageOperation } from '@org/maestrano-sdk';
import type { TestUser } from '@org/maestrano-sdk/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness as SsoHarness, removeMember, startHarness } from '../sso/harness.js';
import { proxyStorage } from '../storage-proxy.js';
import { createHarness, GROUP, provisionGroup, TENANT } from './harness.js';

/**
 * `memoryAdapter()` where the next call of each operation in `loseNext` runs, commits, and then
 * throws the error a driver throws when the connection drops before the answer arrives.
 * `taken` records the lock keys and owners each lock take asked for.
 */
function losingAnswers(inner: StorageAdapter = memoryAdapter()) {
  const loseNext = new Set<StorageOperation>();
  const taken: { operation: StorageOperation; keys: string[]; owner: string }[] = [];
  const adapter = proxyStorage(inner, async (operation, call, args) => {
    if (operation === 'locks.acquire') taken.push({ operation, keys: [args[0] as string], owner: args[1] as string });
    if (operation === 'locks.acquireMany') taken.push({ operation, keys: args[0] as string[], owner: args[1] as string });
    const result = await call();
    if (loseNext.delete(operation)) {
      throw new StorageError(`${operation} failed: Connection terminated unexpectedly`, { adapterId: inner.id, operation, cause: new Error('Connection terminated unexpectedly') });
    }
    return result;
  });
  return { adapter, inner, loseNext, taken };
}

/** Whether another owner can take every key now (nobody holds them). */
async function free(inner: StorageAdapter, keys: string[]): Promise<boolean> {
  const owner = `probe-${Math.random()}`;
  const got = await inner.locks.acquireMany(keys, owner, 60_000);
  await inner.locks.releaseMany(got, owner);
  return got.length === keys.length;
}

describe('sync: a lost answer on a lock take', () => {
  it('the group lock of an import is given back: the next import runs at once instead of ImportBusyError for the TTL', async () => {
    const s = losingAnswers();
    const h = await createHarness({ storage: s.adapter });
    await provisionGroup(h.storage);
    h.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o1');

    s.loseNext.add('locks.acquire');
    await expect(h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP })).rejects.toThrow(/Connection terminated/);
    const groupLock = s.taken.find((t) => t.operation === 'locks.acquire');
    expect(groupLock).toBeDefined();
    expect(await free(s.inner, groupLock?.keys ?? [])).toBe(true);

    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP }).catch((error: unknown) => error);
    expect(report).not.toBeInstanceOf(ImportBusyError);
    expect([...h.app.companies.values()].map((c) => c.name)).toContain('Acme');
  });

  it("the record locks of a batch are given back: the records are not 'busy' for the lock's TTL", async () => {
    const s = losingAnswers();
    const h = await createHarness({ storage: s.adapter });
    await provisionGroup(h.storage);
    h.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o1');

    s.loseNext.add('locks.acquireMany');
    await expect(h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP })).rejects.toThrow(/locks\.acquireMany failed/);
    const recordLocks = s.taken.find((t) => t.operation === 'locks.acquireMany');
    expect(recordLocks?.keys.length).toBeGreaterThan(0);
    expect(await free(s.inner, recordLocks?.keys ?? [])).toBe(true);

    await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect([...h.app.companies.values()].map((c) => c.name)).toContain('Acme');
  });

  it('the group lock of a purge is given back: the next purge runs instead of answering busy', async () => {
    const s = losingAnswers();
    const h = await createHarness({ storage: s.adapter });
    await provisionGroup(h.storage);
    h.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o1');
    await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect(await s.inner.idMaps.list({ tenant: TENANT, groupId: GROUP, entity: 'companies' }, { limit: 10 })).toHaveLength(1);
    await s.inner.groups.cancel(TENANT, GROUP);

    s.taken.length = 0;
    s.loseNext.add('locks.acquire');
    await expect(h.sync.api.purgeGroup({ tenant: TENANT, groupId: GROUP })).rejects.toThrow(/Connection terminated/);
    expect(await free(s.inner, s.taken[0]?.keys ?? [])).toBe(true);

    const result = await h.sync.api.purgeGroup({ tenant: TENANT, groupId: GROUP });
    expect(result).toMatchObject({ groupId: GROUP, idMaps: 1 });
    expect(await s.inner.idMaps.list({ tenant: TENANT, groupId: GROUP, entity: 'companies' }, { limit: 10 })).toEqual([]);
  });
});

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100' };
let sso: SsoHarness | undefined;
afterEach(async () => {
  await sso?.close();
  sso = undefined;
});

describe('SSO and account webhooks: a lost answer on a claim or lock take', () => {
  it("a login whose user claim was taken but not answered gives it back: the next login provisions at once, the claim is nobody's", async () => {
    const s = losingAnswers();
    sso = await startHarness({ storage: s.adapter });

    s.loseNext.add('users.claim');
    expect((await sso.login(alice)).status).toBe(503);
    // Nobody holds a claim on the user: another owner's claim is taken, not 'pending'.
    const probe = await s.inner.users.claim(sso.tenant, alice.uid, { owner: 'probe', ttlMs: 60_000 });
    expect(probe.state).toBe('claimed');
    await s.inner.users.release(sso.tenant, alice.uid, 'probe');

    expect((await sso.login(alice)).status).toBe(200);
    expect(await s.inner.users.get(sso.tenant, alice.uid)).toMatchObject({ uid: alice.uid });
  });

  it("a first login whose group claim was taken but not answered gives it back: the claim is nobody's and the next login creates the company", async () => {
    const s = losingAnswers();
    sso = await startHarness({ storage: s.adapter });

    s.loseNext.add('groups.claim');
    expect((await sso.login(alice)).status).toBe(503);
    const probe = await s.inner.groups.claim(sso.tenant, alice.groupUid, { owner: 'probe', ttlMs: 60_000 });
    expect(probe.state).toBe('claimed');
    await s.inner.groups.release(sso.tenant, alice.groupUid, 'probe');

    expect((await sso.login(alice)).status).toBe(200);
    expect(await s.inner.groups.get(sso.tenant, alice.groupUid)).toMatchObject({ groupId: alice.groupUid, status: 'active' });
    expect(sso.app.count('createCompany')).toBe(1);
  });

  it("a member removal whose user lock was taken but not answered gives it back: Maestrano's retry removes the member at once", async () => {
    const s = losingAnswers();
    sso = await startHarness({ storage: s.adapter });
    expect((await sso.login(alice)).status).toBe(200);

    s.taken.length = 0;
    s.loseNext.add('locks.acquire');
    expect(await removeMember(sso, alice.uid, alice.groupUid)).toBeGreaterThanOrEqual(500);
    expect(s.taken.length).toBeGreaterThan(0);
    expect(await free(s.inner, s.taken.flatMap((t) => t.keys))).toBe(true);

    expect(await removeMember(sso, alice.uid, alice.groupUid)).toBe(200);
    const memberships = await s.inner.users.listMemberships(sso.tenant, { uid: alice.uid });
    expect(memberships.map((m) => m.status)).toEqual(['removed']);
  });
});
