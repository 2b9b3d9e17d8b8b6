/**
 * A shared session check replaced by a later caller's (it ran for 10 s) no longer speaks for the
 * IdP: when it finally fails (a connection held for minutes, then reset) after the newer check of
 * that IdP was answered, it does not pause every user's due checks. A check that started "in the
 * future" (the clock was set back) is not joined for as long as the clock moved: it is replaced
 * too. An already-aborted signal still gets the answer that needs no network call.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { SsoError } from '../../src/index.js';
import { startHarness } from './harness.js';

async function holdingIdp(now: () => Date) {
  const held: ServerResponse[] = [];
  const asked: string[] = [];
  let hold = true;
  const server = createServer((req, res) => {
    asked.push(new URL(req.url ?? '/', 'http://idp').searchParams.get('session') ?? '');
    if (hold) {
      hold = false; // only the first check is held
      held.push(res);
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ valid: true, recheck: new Date(now().getTime() + 180_000).toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { held, asked, url, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('mno.sso.checkSession replacing a shared check', () => {
  it('a replaced check that finally fails does not pause the due checks of the IdP another check was answered by', async () => {
    let now = new Date('2030-01-01T00:00:00Z');
    const idp = await holdingIdp(() => now);
    const fresh = await startHarness({ tenantSso: { idp: idp.url }, clock: () => now });
    const stored = (token: string) => ({ tenant: fresh.tenant, uid: 'usr-1', groupUid: 'cld-1', session: token, recheck: '2029-12-31T23:59:00Z' });
    try {
      const patient = fresh.mno.sso.checkSession(stored('tok-1'), { timeoutMs: Number.POSITIVE_INFINITY }).catch((error: unknown) => error);
      await expect.poll(() => idp.held.length).toBe(1);
      now = new Date(now.getTime() + 10_000);
      expect(await fresh.mno.sso.checkSession(stored('tok-1'))).toMatchObject({ valid: true, checked: true });
      // The held connection is reset: the replaced check fails, for its own caller only.
      idp.held[0]?.destroy();
      expect(await patient).toMatchObject({ reason: 'session_check_failed' });
      // Another user's due check of that IdP still asks it.
      expect(await fresh.mno.sso.checkSession(stored('tok-2'))).toMatchObject({ valid: true, checked: true });
      expect(idp.asked).toEqual(['tok-1', 'tok-1', 'tok-2']);
    } finally {
      for (const res of idp.held) res.destroy();
      await fresh.close();
      await idp.close();
    }
  });

  it('a check started before the clock was set back an hour is not joined for that hour', async () => {
    let now = new Date('2030-01-01T00:00:00Z');
    const idp = await holdingIdp(() => now);
    const fresh = await startHarness({ tenantSso: { idp: idp.url }, clock: () => now });
    const stored = { tenant: fresh.tenant, uid: 'usr-1', groupUid: 'cld-1', session: 'tok-1', recheck: '2029-12-31T00:00:00Z' };
    try {
      const patient = fresh.mno.sso.checkSession(stored, { timeoutMs: Number.POSITIVE_INFINITY }).catch((error: unknown) => error);
      await expect.poll(() => idp.held.length).toBe(1);
      now = new Date(now.getTime() - 3_600_000);
      const later = await fresh.mno.sso.checkSession(stored, { timeoutMs: 500 }).catch((error: unknown) => error);
      expect(later).not.toBeInstanceOf(SsoError);
      expect(later).toMatchObject({ valid: true, checked: true });
      expect(idp.asked).toEqual(['tok-1', 'tok-1']);
      idp.held[0]?.destroy();
      await patient;
    } finally {
      for (const res of idp.held) res.destroy();
      await fresh.close();
      await idp.close();
    }
  });

  it('a session not yet due is answered valid without the network, also with an aborted signal', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const idp = await holdingIdp(() => now);
    const fresh = await startHarness({ tenantSso: { idp: idp.url }, clock: () => now });
    try {
      const gone = new AbortController();
      gone.abort(new Error('client went away'));
      const stored = { tenant: fresh.tenant, uid: 'usr-1', groupUid: 'cld-1', session: 'tok-1', recheck: '2030-01-01T00:03:00Z' };
      expect(await fresh.mno.sso.checkSession(stored, { signal: gone.signal })).toMatchObject({ valid: true, checked: false });
      const due = await fresh.mno.sso.checkSession({ ...stored, recheck: '2029-12-31T23:59:00Z' }, { signal: gone.signal }).catch((error: unknown) => error);
      expect(due).toBeInstanceOf(SsoError);
      expect((due as SsoError).reason).toBe('session_check_failed');
      expect(idp.asked).toEqual([]);
    } finally {
      await fresh.close();
      await idp.close();
    }
  });
});
