/**
 * Virtual mode. A login whose `addMembership` is accepted while Maestrano deletes the group
 * (the deletion answered 200, so it is never redelivered) withdraws that membership itself.
 * When the withdrawal fails (the app's `removeMembership` throws once, or storage fails), the
 * login answers 503 and the user's retry, refused as cancelled, finishes the withdrawal: the app
 * hears `blockUser`, and the SDK's storage has the user blocked and the membership removed.
 */
import type { CompanyHandle, ProvisioningContext, UserHandle } from '@org/maestrano-sdk';
import type { TestUser } from '@org/maestrano-sdk/testing';
import { afterEach, expect, it } from 'vitest';
import { type Harness, type HarnessOptions, startHarness } from './harness.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100' };
const bob: TestUser = { uid: 'usr-bob', email: 'bob@doecorp.com', groupUid: 'cld-100' };
const bobKey = 'usr-bob.cld-100';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

interface Setup {
  calls: string[];
  keys: string[];
  failRemove: { count: number };
  failBlock: { count: number };
  /** Starts bob's login, deletes the group while the app accepts his membership, returns the login's answer. */
  lateLogin(): Promise<number>;
}

async function setup(options: Pick<HarnessOptions, 'storage' | 'logger'> = {}): Promise<Setup> {
  const calls: string[] = [];
  const keys: string[] = [];
  let pauseAdd: { reached: () => void; wait: Promise<void> } | null = null;
  const failRemove = { count: 0 };
  const failBlock = { count: 0 };
  h = await startHarness({
    ...options,
    tenantSso: { creation_mode: 'virtual' },
    extraConfig: { billing: { cancelRecurringBillsOnGroupDeleted: false } },
    provisioning: {
      addMembership: async (user: UserHandle, company: CompanyHandle, role: string, ctx: ProvisioningContext) => {
        calls.push(`addMembership:${user.uid}`);
        await h!.app.hooks.addMembership(user, company, role, ctx);
        const gate = pauseAdd;
        pauseAdd = null;
        if (gate) {
          gate.reached();
          await gate.wait;
        }
      },
      removeMembership: async (user: UserHandle, _company: CompanyHandle, ctx: ProvisioningContext) => {
        calls.push(`removeMembership:${user.uid}`);
        keys.push(ctx.idempotencyKey);
        if (failRemove.count > 0) {
          failRemove.count--;
          throw new Error('app database hiccup');
        }
      },
      blockUser: async (user: UserHandle, _company: CompanyHandle, ctx: ProvisioningContext) => {
        calls.push(`blockUser:${user.uid}`);
        keys.push(ctx.idempotencyKey);
        if (user.uid === bobKey && failBlock.count > 0) {
          failBlock.count--;
          throw new Error('app database hiccup');
        }
      },
      cancelCompany: async (company: CompanyHandle) => void calls.push(`cancelCompany:${company.groupId}`),
    },
  });
  expect((await h.login(alice)).status).toBe(200);

  const lateLogin = async (): Promise<number> => {
    let reached!: () => void;
    const atAdd = new Promise<void>((r) => (reached = r));
    let release!: () => void;
    pauseAdd = { reached, wait: new Promise<void>((r) => (release = r)) };
    const login = h!.login(bob);
    await atAdd; // the app has accepted bob's membership
    const deletion = await fetch(`${h!.baseUrl}/maestrano/account/groups/cld-100/${h!.tenant}`, {
      method: 'DELETE',
      headers: { authorization: `Basic ${Buffer.from('app-test-1:test-api-key-1').toString('base64')}` },
    });
    expect(deletion.status).toBe(200); // acknowledged: Maestrano never sends it again
    release();
    return (await login).status;
  };
  return { calls, keys, failRemove, failBlock, lateLogin };
}

async function expectWithdrawn(calls: string[]): Promise<void> {
  expect(calls).toContain(`addMembership:${bobKey}`);
  // Every other member of the deleted group is blocked; bob is too.
  expect((await h!.storage.users.get(h!.tenant, 'usr-alice.cld-100'))?.status).toBe('blocked');
  expect(calls).toContain(`blockUser:${bobKey}`);
  expect((await h!.storage.users.get(h!.tenant, bobKey))?.status).toBe('blocked');
  const [membership] = await h!.storage.users.listMemberships(h!.tenant, { uid: bobKey, groupId: 'cld-100' });
  expect(membership?.status).toBe('removed');
}

it('a late member of a deleted group is withdrawn by the login itself (403)', async () => {
  const s = await setup();
  expect(await s.lateLogin()).toBe(403);
  await expectWithdrawn(s.calls);
  // Nothing is held any more: a later login is refused without calling the app again.
  const before = s.calls.length;
  expect((await h!.login(bob)).status).toBe(403);
  expect(s.calls.slice(before)).toEqual([]);
});

it('a late member of a deleted group ends up blocked even when removeMembership fails once', async () => {
  const s = await setup();
  s.failRemove.count = 1;
  expect(await s.lateLogin()).toBe(503); // the withdrawal failed: "try again"
  expect((await h!.storage.users.get(h!.tenant, bobKey))?.status).toBe('active');
  expect(s.calls).not.toContain(`blockUser:${bobKey}`);

  // The retry is refused as cancelled, and withdraws first (same idempotency keys).
  expect((await h!.login(bob)).status).toBe(403);
  await expectWithdrawn(s.calls);
  const withdrawn = `maestrano-test:${bobKey}:cld-100:withdrawn`;
  expect(s.keys.filter((k) => k.includes(bobKey))).toEqual([`mno:remove-membership:${withdrawn}`, `mno:remove-membership:${withdrawn}`, `mno:block-user:${withdrawn}`]);
  const before = s.calls.length;
  expect((await h!.login(bob)).status).toBe(403);
  expect(s.calls.slice(before)).toEqual([]);
});

it('a blockUser that fails once leaves the withdrawal to the retry too', async () => {
  const failures: Record<string, unknown>[] = [];
  const quiet = () => {};
  const s = await setup({ logger: { debug: quiet, info: quiet, warn: quiet, error: (message, fields) => void (message === 'maestrano: SSO failed' && failures.push(fields ?? {})) } });
  s.failBlock.count = 1;
  expect(await s.lateLogin()).toBe(503);
  // The log names the hook that failed, as for the other hooks of a login.
  expect(failures.map((f) => f['step'])).toEqual(['blockUser failed']);
  // The block comes before the membership's status: nothing of it is written yet.
  const [membership] = await h!.storage.users.listMemberships(h!.tenant, { uid: bobKey, groupId: 'cld-100' });
  expect(membership?.status).toBe('active');
  expect((await h!.login(bob)).status).toBe(403);
  await expectWithdrawn(s.calls);
  expect(s.calls.filter((c) => c === `blockUser:${bobKey}`)).toHaveLength(2);
});
