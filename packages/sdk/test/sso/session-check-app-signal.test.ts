/**
 * An app passes one long-lived signal (its shutdown signal) to every `checkSession`. Joined
 * with each call's timeout through `AbortSignal.any`, every due check left one entry in that
 * signal's list of dependent signals: on Node 20 (which the SDK supports) the entry of a
 * collected dependent is never removed, so the list grew by one per re-check for the life of
 * the process. The app's signal must still stop a check waiting for the IdP.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { SsoError } from '../../src/index.js';
import { startHarness } from './harness.js';

/** How many dependent signals Node records on `signal` (`AbortSignal.any` adds one per call). */
function dependents(signal: AbortSignal): number {
  const key = Object.getOwnPropertySymbols(signal).find((s) => s.description === 'kDependantSignals');
  const set = key === undefined ? undefined : (signal as unknown as Record<symbol, { size?: number } | undefined>)[key];
  return set?.size ?? 0;
}

describe('mno.sso.checkSession with an app-wide signal', () => {
  it('leaves no dependent signal behind per re-check, and an abort still stops a check the IdP holds', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const held: ServerResponse[] = [];
    let hold = false;
    const idpServer = createServer((_req, res) => {
      if (hold) {
        held.push(res);
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ valid: true, recheck: new Date(now.getTime() + 180_000).toISOString() }));
    });
    await new Promise<void>((resolve) => idpServer.listen(0, '127.0.0.1', resolve));
    const fresh = await startHarness({ tenantSso: { idp: `http://127.0.0.1:${(idpServer.address() as AddressInfo).port}` }, clock: () => now });
    const app = new AbortController();
    try {
      for (let i = 0; i < 20; i++) {
        const stored = { tenant: fresh.tenant, uid: 'usr-1', groupUid: 'cld-1', session: `tok-${i}`, recheck: '2029-12-31T23:59:00Z' };
        expect(await fresh.mno.sso.checkSession(stored, { signal: app.signal })).toMatchObject({ valid: true, checked: true });
      }
      expect(dependents(app.signal)).toBe(0);

      hold = true;
      const stored = { tenant: fresh.tenant, uid: 'usr-1', groupUid: 'cld-1', session: 'tok-held', recheck: '2029-12-31T23:59:00Z' };
      const waiting = fresh.mno.sso.checkSession(stored, { signal: app.signal, timeoutMs: 60_000 }).catch((error: unknown) => error);
      await expect.poll(() => held.length).toBe(1);
      app.abort(new Error('app shutting down'));
      const stopped = await waiting;
      expect(stopped).toBeInstanceOf(SsoError);
      expect((stopped as SsoError).reason).toBe('session_check_failed');
    } finally {
      for (const res of held) res.destroy();
      await fresh.close();
      await new Promise<void>((resolve) => idpServer.close(() => resolve()));
    }
  });
});
