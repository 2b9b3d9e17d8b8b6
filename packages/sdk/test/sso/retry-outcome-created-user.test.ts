/**
 * A first login refused after `createUser` (here by `addMembership`) records no user, and its
 * retry reports what happened. With `findUserByEmail` configured, the retry finds the app user
 * the refused attempt created (by the email it was created with): that user is still new to
 * the app (`userCreated`), not an existing account the uid was linked to (`linkedByEmail`),
 * which an app's welcome flow would skip.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const alice = { uid: 'usr-alice', email: 'alice@corp.com', groupUid: 'cld-1' };

describe('the retry of a first login refused after createUser', () => {
  it('reports userCreated, not linkedByEmail, when findUserByEmail finds the user the refused attempt created', async () => {
    h = await startHarness({ withFindUserByEmail: true });
    h.app.failures.addMembership = 1;
    expect((await h.login(alice)).status).toBe(500);
    expect(await h.storage.users.get(h.tenant, 'usr-alice')).toBeNull();
    const ok = await h.login(alice);
    expect(ok.status).toBe(200);
    expect(ok.body['outcome']).toMatchObject({ userCreated: true, linkedByEmail: false, membershipChanged: true });
    expect(h.app.users.size).toBe(1);
    expect((await h.storage.users.get(h.tenant, 'usr-alice'))?.userId).toBe(ok.body['userId']);
  });

  it('still reports linkedByEmail when the refused attempt had linked an app user that existed before', async () => {
    h = await startHarness({ withFindUserByEmail: true });
    h.app.users.set('legacy-1', { email: 'alice@corp.com', firstName: 'Alice', key: 'pre-existing', companyId: null });
    h.app.failures.addMembership = 1;
    expect((await h.login(alice)).status).toBe(500);
    const ok = await h.login(alice);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ userId: 'legacy-1', outcome: { userCreated: false, linkedByEmail: true } });
    expect(h.app.count('createUser')).toBe(0);
  });
});
