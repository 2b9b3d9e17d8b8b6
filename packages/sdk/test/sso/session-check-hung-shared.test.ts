/**
 * A session check started with no timeout (`timeoutMs: Infinity`) against an IdP that never
 * answers is shared with every later check of that session: each one joined it and timed out,
 * and the IdP was never asked again until the process restarted. A check running for 10 s (the
 * default timeout) is joined no more: a later caller asks the IdP itself.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { SsoError } from '../../src/index.js';
import { startHarness } from './harness.js';

describe('mno.sso.checkSession joining a shared check that hangs', () => {
  it('a check running for 10 s is joined no more: a later caller asks the IdP again and gets its answer', async () => {
    let now = new Date('2030-01-01T00:00:00Z');
    const held: ServerResponse[] = [];
    let asked = 0;
    const idpServer = createServer((_req, res) => {
      asked++;
      if (asked === 1) {
        held.push(res); // the first check never gets an answer
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ valid: true, recheck: new Date(now.getTime() + 180_000).toISOString() }));
    });
    await new Promise<void>((resolve) => idpServer.listen(0, '127.0.0.1', resolve));
    const fresh = await startHarness({ tenantSso: { idp: `http://127.0.0.1:${(idpServer.address() as AddressInfo).port}` }, clock: () => now });
    const stored = { tenant: fresh.tenant, uid: 'usr-1', groupUid: 'cld-1', session: 'tok-1', recheck: '2029-12-31T23:59:00Z' };
    try {
      const patient = fresh.mno.sso.checkSession(stored, { timeoutMs: Number.POSITIVE_INFINITY }).catch((error: unknown) => error);
      await expect.poll(() => held.length).toBe(1);
      // Joined while younger than 10 s: it waits for the shared check, and gives up.
      const joined = await fresh.mno.sso.checkSession(stored, { timeoutMs: 200 }).catch((error: unknown) => error);
      expect(joined).toBeInstanceOf(SsoError);
      expect((joined as SsoError).reason).toBe('session_check_failed');
      expect(asked).toBe(1);
      // The shared check has now run for 10 s (the SDK's clock): a later caller asks the IdP itself.
      now = new Date(now.getTime() + 10_000);
      expect(await fresh.mno.sso.checkSession(stored, { timeoutMs: 200 })).toMatchObject({ valid: true, checked: true });
      expect(asked).toBe(2);
      // The patient caller still waits on its own check.
      held[0]?.setHeader('content-type', 'application/json');
      held[0]?.end(JSON.stringify({ valid: true, recheck: new Date(now.getTime() + 60_000).toISOString() }));
      expect(await patient).toMatchObject({ valid: true, checked: true });
    } finally {
      for (const res of held) res.destroy();
      await fresh.close();
      await new Promise<void>((resolve) => idpServer.close(() => resolve()));
    }
  });
});
