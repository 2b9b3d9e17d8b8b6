/**
 * Concurrent re-checks of one session (tabs, parallel XHR) share one IdP call; each caller
 * still waits no longer than its own `timeoutMs`, also when it joined a call another request
 * started with a longer one.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { SsoError } from '../../src/index.js';
import { startHarness } from './harness.js';

describe('mno.sso.checkSession with concurrent callers', () => {
  it('sends one IdP call, and a caller with a shorter timeoutMs stops waiting at its own', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const held: ServerResponse[] = [];
    let calls = 0;
    const idpServer = createServer((_req, res) => {
      calls++;
      held.push(res);
    });
    await new Promise<void>((resolve) => idpServer.listen(0, '127.0.0.1', resolve));
    const fresh = await startHarness({ tenantSso: { idp: `http://127.0.0.1:${(idpServer.address() as AddressInfo).port}` }, clock: () => now });
    try {
      const stored = { tenant: fresh.tenant, uid: 'usr-1', groupUid: 'cld-1', session: 'tok', recheck: '2029-12-31T23:59:00Z' };
      const first = fresh.mno.sso.checkSession(stored, { timeoutMs: 60_000 });
      first.catch(() => {}); // awaited below; a failed assertion before must not leave it unhandled
      await expect.poll(() => calls).toBe(1);
      // Joins the call in flight; before, it waited the first caller's 60 s.
      const impatient = await fresh.mno.sso.checkSession(stored, { timeoutMs: 50 }).catch((error: unknown) => error);
      expect(impatient).toBeInstanceOf(SsoError);
      expect((impatient as SsoError).reason).toBe('session_check_failed');
      expect(calls).toBe(1);
      // The shared call goes on for the first caller.
      const [response] = held;
      if (!response) throw new Error('the IdP holds no request');
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ valid: true, recheck: new Date(now.getTime() + 180_000).toISOString() }));
      expect(await first).toMatchObject({ valid: true, checked: true });
      expect(calls).toBe(1);
    } finally {
      for (const res of held) res.destroy();
      await fresh.close();
      await new Promise<void>((resolve) => idpServer.close(() => resolve()));
    }
  });
});
