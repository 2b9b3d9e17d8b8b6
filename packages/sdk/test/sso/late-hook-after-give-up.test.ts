/**
 * A `createCompany` that outlasts the SDK's give-up (three claim TTLs: the login answered 503)
 * and then creates the company after all. Had the SDK kept waiting, the login would have
 * recorded that company, and a deletion of the group would cancel it. Given up, the company
 * must still be found by the deletion that comes before the user tries again.
 */
import type { TestUser } from '@org/maestrano-sdk/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100', groupName: 'DoeCorp', groupRole: 'Admin' };

let h: Harness;
afterEach(async () => {
  await h?.close();
});

/** A harness whose claim TTL is 1 s (the SDK gives up on a hook after 3 s); returns the cancelled company ids. */
async function start(): Promise<string[]> {
  const cancelled: string[] = [];
  h = await startHarness({
    extraConfig: { sso: { provisioningClaimTtlMs: 1_000 } } as never,
    provisioning: {
      cancelCompany: async (company: { id: string }) => {
        cancelled.push(company.id);
      },
    },
  });
  return cancelled;
}

/** Maestrano deletes the group (the customer cancelled the service). */
async function deleteGroup(): Promise<number> {
  const res = await fetch(`${h.baseUrl}/maestrano/account/groups/cld-100/${h.tenant}`, {
    method: 'DELETE',
    headers: { authorization: `Basic ${Buffer.from('app-test-1:test-api-key-1').toString('base64')}` },
  });
  await res.arrayBuffer();
  return res.status;
}

describe('SSO – a createCompany that settles after the login gave up on it', () => {
  it('the company it created is cancelled by a deletion of the group that arrives before any retry', async () => {
    const cancelled = await start();
    h.app.createCompanyDelays = [3_500]; // past the 3 s give-up, ignoring ctx.signal
    const first = await h.login(alice);
    expect(first.status).toBe(503);
    // The hook finishes after all: the app now holds the company.
    await expect.poll(() => h.app.companies.size, { timeout: 3_000, interval: 50 }).toBe(1);
    const [companyId] = [...h.app.companies.keys()];
    await new Promise((r) => setTimeout(r, 100));

    // Maestrano deletes the group (the customer cancelled) before Alice tries again.
    expect(await deleteGroup()).toBe(200);
    expect(cancelled).toEqual([companyId]);
  }, 20_000);

  it('the company it creates after a deletion was acknowledged (which found none) is cancelled', async () => {
    const cancelled = await start();
    h.app.createCompanyDelays = [4_000];
    expect((await h.login(alice)).status).toBe(503);
    expect(await deleteGroup()).toBe(200);
    expect(h.app.companies.size).toBe(0);
    await expect.poll(() => cancelled, { timeout: 3_000, interval: 50 }).toEqual(['co-1']);
  }, 20_000);
});
