/**
 * `checkSession(stored, { signal })` with the app's signal: an already-aborted signal (a
 * request whose client went away) asks the IdP nothing, and a caller's abort is not the IdP's
 * failure: it neither leaves a listener on the app's signal nor pauses the other users' checks.
 */
import { getEventListeners } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { SsoError } from '../../src/index.js';
import { startHarness } from './harness.js';

describe('mno.sso.checkSession with an aborted app signal', () => {
  it('asks the IdP nothing when the signal is already aborted; an abort mid-check leaves nothing behind', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const held: ServerResponse[] = [];
    let hold = false;
    const asked: string[] = [];
    const idpServer = createServer((req, res) => {
      asked.push(new URL(req.url ?? '/', 'http://idp').searchParams.get('session') ?? '');
      if (hold) {
        held.push(res);
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ valid: true, recheck: new Date(now.getTime() + 180_000).toISOString() }));
    });
    await new Promise<void>((resolve) => idpServer.listen(0, '127.0.0.1', resolve));
    const fresh = await startHarness({ tenantSso: { idp: `http://127.0.0.1:${(idpServer.address() as AddressInfo).port}` }, clock: () => now });
    const stored = (token: string) => ({ tenant: fresh.tenant, uid: 'usr-1', groupUid: 'cld-1', session: token, recheck: '2029-12-31T23:59:00Z' });
    try {
      const gone = new AbortController();
      gone.abort(new Error('client went away'));
      const refused = await fresh.mno.sso.checkSession(stored('tok-a'), { signal: gone.signal }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(SsoError);
      expect((refused as SsoError).reason).toBe('session_check_failed');
      // A check after it, answered: a call started anyway for tok-a would have reached the IdP first.
      expect(await fresh.mno.sso.checkSession(stored('tok-x'))).toMatchObject({ valid: true, checked: true });
      expect(asked).toEqual(['tok-x']);

      // An abort while the IdP holds the check: the caller stops waiting, nothing stays on the signal.
      hold = true;
      const app = new AbortController();
      const waiting = fresh.mno.sso.checkSession(stored('tok-b'), { signal: app.signal, timeoutMs: 60_000 }).catch((error: unknown) => error);
      await expect.poll(() => held.length).toBe(1);
      expect(getEventListeners(app.signal, 'abort')).toHaveLength(1);
      app.abort(new Error('request closed'));
      expect((await waiting) as SsoError).toMatchObject({ reason: 'session_check_failed' });
      expect(getEventListeners(app.signal, 'abort')).toHaveLength(0);
      // The IdP then answers: other checks of that IdP are not paused by the caller's abort.
      hold = false;
      const answer = held.shift();
      answer?.setHeader('content-type', 'application/json');
      answer?.end(JSON.stringify({ valid: true, recheck: new Date(now.getTime() + 180_000).toISOString() }));
      const signal = new AbortController().signal;
      expect(await fresh.mno.sso.checkSession(stored('tok-c'), { signal })).toMatchObject({ valid: true, checked: true });
      expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    } finally {
      for (const res of held) res.destroy();
      await fresh.close();
      await new Promise<void>((resolve) => idpServer.close(() => resolve()));
    }
  });
});
