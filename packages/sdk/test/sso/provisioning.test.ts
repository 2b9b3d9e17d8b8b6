import { JobTypes, memoryAdapter } from '@org/maestrano-sdk';
import type { TestUser } from '@org/maestrano-sdk/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100', groupName: 'DoeCorp', groupRole: 'Admin' };
const bob: TestUser = { uid: 'usr-bob', email: 'bob@doecorp.com', groupUid: 'cld-100', groupName: 'DoeCorp', groupRole: 'Member' };

let h: Harness;
afterEach(async () => {
  await h?.close();
});

/** A harness whose SDK and storage share a clock `later` moves ahead (Maestrano acting later). */
async function harnessWithClock(): Promise<{ now: () => Date; later(ms: number): void }> {
  let offsetMs = 0;
  const now = () => new Date(Date.now() + offsetMs);
  h = await startHarness({ clock: now, storage: memoryAdapter({ clock: now }) });
  return {
    now,
    later: (ms) => {
      offsetMs += ms;
    },
  };
}

async function companyJobs(harness: Harness) {
  const counts = await harness.storage.jobs.counts({ type: JobTypes.companyCreated });
  return counts.pending + counts.running + counts.done + counts.dead;
}

describe('SSO provisioning rules through mno.handler (memory adapter)', () => {
  it('1.2.1/1.2.3: unknown group -> creates the company from the group name and id, then the user, and one company.created job', async () => {
    h = await startHarness();
    const res = await h.login(alice);
    expect(res.status).toBe(200);
    expect(res.body['outcome']).toEqual({ companyCreated: true, userCreated: true, linkedByEmail: false, membershipChanged: true });

    expect(h.app.companies.size).toBe(1);
    const [companyId, company] = [...h.app.companies][0]!;
    expect(company.group.uid).toBe('cld-100');
    expect(company.group.name).toBe('DoeCorp');
    expect(company.group.orgUid).toBe('org-100');
    expect(company.group.currency).toBe('USD');
    expect(company.group.endFreeTrial).toBeInstanceOf(Date);
    expect(res.body['companyId']).toBe(companyId);

    const group = await h.storage.groups.get(h.tenant, 'cld-100');
    expect(group).toMatchObject({ companyId, status: 'active', orgUid: 'org-100' });
    const user = await h.storage.users.get(h.tenant, 'usr-alice');
    expect(user?.userId).toBe(res.body['userId']);
    expect(h.app.users.get(user!.userId)?.companyId).toBe(companyId);
    const memberships = await h.storage.users.listMemberships(h.tenant, { uid: 'usr-alice' });
    expect(memberships.map((m) => [m.groupId, m.role, m.status])).toEqual([['cld-100', 'Admin', 'active']]);
    expect(h.app.memberships.get(`${user!.userId}|${companyId}`)).toBe('Admin');

    const [job] = await h.storage.jobs.claim({ worker: 'w', limit: 10, leaseMs: 10_000, types: [JobTypes.companyCreated] });
    expect(job).toMatchObject({
      type: 'company.created',
      tenant: h.tenant,
      groupId: 'cld-100',
      dedupeKey: `company.created:${h.tenant}:cld-100`,
    });
    expect(job?.payload).toMatchObject({ tenant: h.tenant, groupId: 'cld-100', companyId, group: { name: 'DoeCorp', orgUid: 'org-100' } });

    // onLogin got the typed SSO data and a session to store.
    const login = h.logins[0]!;
    expect(login.user.profile).toMatchObject({ uid: 'usr-alice', key: 'usr-alice', email: 'alice@doecorp.com', virtualUid: 'usr-alice.cld-100' });
    expect(login.session).toMatchObject({ tenant: h.tenant, uid: 'usr-alice', groupUid: 'cld-100' });
    expect(login.session.session).toMatch(/^sess-/);
  });

  it('keeps every entry of the legacy organizations attribute, even one keyed "__proto__" (no prototype is set from IdP data)', async () => {
    h = await startHarness();
    const organizations = { ['__proto__']: { name: 'Odd Org', role: 'Member' }, 'org-1': { name: 'Org One', role: 'Admin' } };
    const res = await h.login({ ...alice, organizations });
    expect(res.status).toBe(200);
    const received = h.logins[0]!.user.profile.organizations;
    expect(Object.keys(received).sort()).toEqual(['__proto__', 'org-1']);
    expect(Object.getPrototypeOf(received)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(received, '__proto__')?.value).toEqual({ name: 'Odd Org', role: 'Member' });
  });

  it('reads a trial end written without a time zone as UTC, whatever the server time zone', async () => {
    const tz = process.env.TZ;
    process.env.TZ = 'America/Los_Angeles';
    try {
      h = await startHarness();
      const end = '2030-01-01T00:00:00.000Z';
      const res = await h.login(
        { ...alice, groupEndFreeTrial: new Date(end) },
        { mutateUnsigned: (xml) => xml.replace(`>${end}<`, '>2030-01-01T00:00:00<') },
      );
      expect(res.status).toBe(200);
      const [, company] = [...h.app.companies][0]!;
      expect(company.group.endFreeTrial?.toISOString()).toBe(end);
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });

  it('1.2.2: known group -> creates only the user, inside the existing company', async () => {
    h = await startHarness();
    const first = await h.login(alice);
    const second = await h.login(bob);
    expect(second.status).toBe(200);
    expect(second.body['outcome']).toMatchObject({ companyCreated: false, userCreated: true });
    expect(second.body['companyId']).toBe(first.body['companyId']);
    expect(h.app.count('createCompany')).toBe(1);
    expect(h.app.users.size).toBe(2);
    expect(await companyJobs(h)).toBe(1);
    const members = await h.storage.users.listMemberships(h.tenant, { groupId: 'cld-100' });
    expect(members.map((m) => `${m.uid}:${m.role}`).sort()).toEqual(['usr-alice:Admin', 'usr-bob:Member']);
  });

  it('1.3.1: known uid -> logs in without creating anything; the role is updated when it changed', async () => {
    h = await startHarness();
    const first = await h.login(alice);
    const again = await h.login(alice);
    expect(again.status).toBe(200);
    expect(again.body['outcome']).toEqual({ companyCreated: false, userCreated: false, linkedByEmail: false, membershipChanged: false });
    expect(again.body['userId']).toBe(first.body['userId']);
    expect(h.app.count('createUser')).toBe(1);
    expect(h.app.count('addMembership')).toBe(1);

    const promoted = await h.login({ ...alice, groupRole: 'Super Admin' });
    expect(promoted.body['outcome']).toMatchObject({ membershipChanged: true });
    const [membership] = await h.storage.users.listMemberships(h.tenant, { uid: 'usr-alice', groupId: 'cld-100' });
    expect(membership?.role).toBe('Super Admin');
    expect(h.app.memberships.get(`${first.body['userId']}|${first.body['companyId']}`)).toBe('Super Admin');
  });

  it('a user blocked by a member-removal webhook is active again after Maestrano adds it back and it signs in', async () => {
    const clock = await harnessWithClock();
    await h.login(alice);
    // What the removal webhook leaves behind: the membership removed, the user blocked.
    await h.storage.users.setMembershipStatus(h.tenant, 'usr-alice', 'cld-100', 'removed');
    await h.storage.users.setStatus(h.tenant, 'usr-alice', 'blocked');
    // An assertion issued after the removal (IssueInstant is in whole seconds: a later second).
    clock.later(1_000);
    const again = await h.login(alice, { now: clock.now() });
    expect(again.status).toBe(200);
    expect(again.body['outcome']).toMatchObject({ userCreated: false, membershipChanged: true });
    expect((await h.storage.users.get(h.tenant, 'usr-alice'))!.status).toBe('active');
    const memberships = await h.storage.users.listMemberships(h.tenant, { uid: 'usr-alice' });
    expect(memberships.map((m) => [m.groupId, m.status])).toEqual([['cld-100', 'active']]);
  });

  it('each change of a membership gets its own addMembership key: a role switched back and a re-add after a removal are new operations; a retry keeps its key', async () => {
    const clock = await harnessWithClock();
    const keys = () => h!.app.calls.filter((c) => c.hook === 'addMembership').map((c) => c.key);
    await h.login(alice); // Admin
    await h.login({ ...alice, groupRole: 'Member' });
    await h.login(alice); // back to Admin
    expect(keys()).toHaveLength(3);
    expect(new Set(keys()).size).toBe(3);
    // Removed (what the webhook leaves), then given back: another new key.
    await h.storage.users.setMembershipStatus(h.tenant, 'usr-alice', 'cld-100', 'removed');
    clock.later(1_000);
    h.app.failures.addMembership = 1;
    expect((await h.login(alice, { now: clock.now() })).status).toBe(500);
    expect((await h.login(alice, { now: clock.now() })).status).toBe(200);
    const all = keys();
    expect(all).toHaveLength(5);
    // The refused attempt and its retry are one operation (same key), distinct from the first add.
    expect(all[4]).toBe(all[3]);
    expect(new Set(all).size).toBe(4);
    expect(all.every((k) => k.startsWith(`mno:membership:${h!.tenant}:usr-alice:cld-100`) && k.endsWith(':Admin') === (k !== all[1]))).toBe(true);
  });

  it('known uid through a new group -> creates that company and adds the membership (real mode: one user, two companies)', async () => {
    h = await startHarness();
    const first = await h.login(alice);
    const other = await h.login({ ...alice, groupUid: 'cld-200', groupName: 'Other' });
    expect(other.body['outcome']).toMatchObject({ companyCreated: true, userCreated: false });
    expect(other.body['userId']).toBe(first.body['userId']);
    expect(other.body['companyId']).not.toBe(first.body['companyId']);
    expect((await h.storage.users.listMemberships(h.tenant, { uid: 'usr-alice' })).map((m) => m.groupId).sort()).toEqual([
      'cld-100',
      'cld-200',
    ]);
    expect(await companyJobs(h)).toBe(2);
  });

  it('1.4.1: unknown uid whose email matches findUserByEmail -> links the uid to that user, creates no user', async () => {
    h = await startHarness({ withFindUserByEmail: true });
    h.app.users.set('legacy-7', { email: 'alice@doecorp.com', firstName: 'Alice', key: 'pre-existing', companyId: null });
    const res = await h.login(alice);
    expect(res.status).toBe(200);
    expect(res.body['userId']).toBe('legacy-7');
    expect(res.body['outcome']).toMatchObject({ linkedByEmail: true, userCreated: false, companyCreated: true });
    expect(h.app.count('createUser')).toBe(0);
    expect((await h.storage.users.get(h.tenant, 'usr-alice'))?.userId).toBe('legacy-7');
    // The next login is a known uid: no second lookup.
    await h.login(alice);
    expect(h.app.count('findUserByEmail')).toBe(1);
  });

  it('1.4.1 without a match falls through to user creation', async () => {
    h = await startHarness({ withFindUserByEmail: true });
    const res = await h.login(alice);
    expect(res.body['outcome']).toMatchObject({ linkedByEmail: false, userCreated: true, companyCreated: true });
    expect(h.app.count('findUserByEmail')).toBe(1);
  });

  it('virtual mode keys users by virtual_uid/virtual_email: one person in two groups is two app users', async () => {
    h = await startHarness({ tenantSso: { creation_mode: 'virtual' } });
    const a = await h.login(alice);
    const b = await h.login({ ...alice, groupUid: 'cld-300' });
    expect(a.body['uid']).toBe('usr-alice.cld-100');
    expect(b.body['uid']).toBe('usr-alice.cld-300');
    expect(a.body['userId']).not.toBe(b.body['userId']);
    expect(h.app.users.get(String(a.body['userId']))?.email).toBe('usr-alice.cld-100@mail.maestrano.com');
    expect(await h.storage.users.get(h.tenant, 'usr-alice')).toBeNull();
  });

  it('a createCompany hook that throws leaves nothing behind (no group, no job, no user) and the next attempt succeeds', async () => {
    h = await startHarness();
    h.app.failures.createCompany = 1;
    const failed = await h.login(alice);
    expect(failed.status).toBe(500);
    expect(failed.body).toEqual({ error: 'provisioning_failed', message: 'Your account could not be set up, please try again' });
    expect(await h.storage.groups.get(h.tenant, 'cld-100')).toBeNull();
    expect(await h.storage.users.get(h.tenant, 'usr-alice')).toBeNull();
    expect(await companyJobs(h)).toBe(0);
    expect(h.logins).toHaveLength(0);

    const ok = await h.login(alice);
    expect(ok.status).toBe(200);
    expect(ok.body['outcome']).toMatchObject({ companyCreated: true, userCreated: true });
    expect(await companyJobs(h)).toBe(1);
  });

  it('a createUser hook that throws keeps the (complete) company, records no user, and the retry creates the user only', async () => {
    h = await startHarness();
    h.app.failures.createUser = 1;
    expect((await h.login(alice)).status).toBe(500);
    expect(await h.storage.users.get(h.tenant, 'usr-alice')).toBeNull();
    expect(await h.storage.groups.get(h.tenant, 'cld-100')).not.toBeNull();
    const ok = await h.login(alice);
    expect(ok.status).toBe(200);
    expect(ok.body['outcome']).toMatchObject({ companyCreated: false, userCreated: true });
    expect(h.app.count('createCompany')).toBe(1);
    expect(await companyJobs(h)).toBe(1);
  });

  it('an addMembership hook that throws fails the login without recording the membership; the next login adds it', async () => {
    h = await startHarness();
    await h.login(alice);
    h.app.failures.addMembership = 1;
    expect((await h.login({ ...alice, groupRole: 'Member' })).status).toBe(500);
    const [m1] = await h.storage.users.listMemberships(h.tenant, { uid: 'usr-alice' });
    expect(m1?.role).toBe('Admin');
    const ok = await h.login({ ...alice, groupRole: 'Member' });
    expect(ok.body['outcome']).toMatchObject({ membershipChanged: true });
    const [m2] = await h.storage.users.listMemberships(h.tenant, { uid: 'usr-alice' });
    expect(m2?.role).toBe('Member');
  });

  it('the log of a failed login names the hook that failed, beside the error the app threw', async () => {
    const logged: Array<{ message: string; fields: Record<string, unknown> | undefined }> = [];
    const record = (message: string, fields?: Record<string, unknown>) => {
      logged.push({ message, fields });
    };
    h = await startHarness({ withFindUserByEmail: true, logger: { debug() {}, info() {}, warn: record, error: record } });
    const cases = [
      ['createCompany', 'createCompany failed'],
      ['findUserByEmail', 'findUserByEmail failed'],
      ['createUser', 'createUser failed'],
      ['addMembership', 'addMembership failed'],
    ] as const;
    for (const [hook, step] of cases) {
      logged.length = 0;
      h.app.failures[hook] = 1;
      const res = await h.login(alice);
      expect(res.status, hook).toBe(500);
      const failure = logged.find((entry) => entry.message === 'maestrano: SSO failed');
      expect(failure?.fields, hook).toMatchObject({ reason: 'provisioning_failed', step, cause: `Error: ${hook} failed on purpose` });
    }
    expect((await h.login(alice)).status).toBe(200);
  });

  it("a first login refused by addMembership records no user: the retry reports userCreated (the app's createUser is asked again with the same key)", async () => {
    h = await startHarness();
    h.app.failures.addMembership = 1;
    expect((await h.login(alice)).status).toBe(500);
    expect(h.logins).toHaveLength(0);
    expect(await h.storage.users.get(h.tenant, 'usr-alice')).toBeNull();
    expect(await h.storage.users.listMemberships(h.tenant, { uid: 'usr-alice' })).toEqual([]);
    const ok = await h.login(alice);
    expect(ok.status).toBe(200);
    expect(ok.body['outcome']).toMatchObject({ userCreated: true, membershipChanged: true });
    expect(h.app.count('createUser')).toBe(2);
    expect(h.app.users.size).toBe(1); // the idempotency key gave the same app user back
    expect((await h.storage.users.get(h.tenant, 'usr-alice'))?.userId).toBe(ok.body['userId']);
  });

  it('20 concurrent first logins for one new group create exactly one company and one company.created job', async () => {
    h = await startHarness({ storage: memoryAdapter() });
    h.app.createCompanyDelayMs = 30;
    const users = Array.from({ length: 20 }, (_, i) => ({ uid: `usr-c${i}`, email: `c${i}@x.com`, groupUid: 'cld-race', groupRole: 'Member' }));
    const results = await Promise.all(users.map((u) => h.login(u)));
    expect(results.map((r) => r.status)).toEqual(users.map(() => 200));
    expect(h.app.companies.size).toBe(1);
    expect(h.app.count('createCompany')).toBe(1);
    expect(new Set(results.map((r) => r.body['companyId'])).size).toBe(1);
    expect(results.filter((r) => (r.body['outcome'] as { companyCreated: boolean }).companyCreated)).toHaveLength(1);
    expect(await companyJobs(h)).toBe(1);
    expect(h.app.users.size).toBe(20);
    expect(await h.storage.users.listMemberships(h.tenant, { groupId: 'cld-race' })).toHaveLength(20);
  });

  it('20 concurrent first logins of one new user create exactly one user', async () => {
    h = await startHarness();
    const results = await Promise.all(Array.from({ length: 20 }, () => h.login(alice)));
    expect(results.map((r) => r.status)).toEqual(results.map(() => 200));
    expect(h.app.count('createUser')).toBe(1);
    expect(h.app.users.size).toBe(1);
    expect(new Set(results.map((r) => r.body['userId'])).size).toBe(1);
    expect(h.app.companies.size).toBe(1);
  });

  it('a login stuck in createCompany past the claim TTL is taken over: still one company (same idempotency key) and one job', async () => {
    h = await startHarness({ sso: { provisioningClaimTtlMs: 1_000 } });
    h.app.createCompanyDelays = [2_500];
    const slow = h.login(alice);
    // Start the second login once the first one is inside createCompany (holding the claim).
    while (h.app.count('createCompany') === 0) await new Promise((r) => setTimeout(r, 20));
    const fast = await h.login(bob);
    const first = await slow;
    expect([first.status, fast.status]).toEqual([200, 200]);
    // Both logins ran the hook (the first one's claim expired), with one idempotency key.
    expect(h.app.calls.filter((c) => c.hook === 'createCompany').map((c) => c.key)).toEqual([
      `mno:company:${h.tenant}:cld-100`,
      `mno:company:${h.tenant}:cld-100`,
    ]);
    expect(h.app.companies.size).toBe(1);
    expect(first.body['companyId']).toBe(fast.body['companyId']);
    expect((await h.storage.groups.get(h.tenant, 'cld-100'))?.companyId).toBe(fast.body['companyId']);
    expect(await companyJobs(h)).toBe(1);
  });

  it('a cancelled group refuses logins (403) and provisions no new user in it', async () => {
    h = await startHarness();
    await h.login(alice);
    expect((await h.storage.groups.cancel(h.tenant, 'cld-100')).changed).toBe(true);
    const known = await h.login(alice);
    expect(known.status).toBe(403);
    expect(known.body).toEqual({ error: 'provisioning_failed', message: 'This account has been cancelled' });
    const newcomer = await h.login(bob);
    expect(newcomer.status).toBe(403);
    expect(h.app.count('createUser')).toBe(1);
    expect(await h.storage.users.get(h.tenant, 'usr-bob')).toBeNull();
    expect(h.logins).toHaveLength(1);
  });
});
