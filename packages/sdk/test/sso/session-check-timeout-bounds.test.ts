/**
 * `checkSession`'s `timeoutMs` goes to a timer: Node fires a delay above 2^31-1 ms after 1 ms,
 * and `AbortSignal.timeout(Infinity)` throws a RangeError. A long timeout (or Infinity, "no
 * timeout", as the Connec! client takes it) must not fail every re-check at once.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { PayloadValidationError } from '../../src/index.js';
import { startHarness } from './harness.js';

describe('mno.sso.checkSession timeoutMs bounds', () => {
  it('Infinity waits for the IdP; a timeout no timer can hold is refused, not turned into 1 ms', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    let calls = 0;
    const held: ServerResponse[] = [];
    const idpServer = createServer((_req, res) => {
      calls++;
      held.push(res);
      // Answers after 50 ms: longer than the 1 ms an overflowed timer waits.
      setTimeout(() => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ valid: true, recheck: new Date(now.getTime() + 180_000).toISOString() }));
      }, 50);
    });
    await new Promise<void>((resolve) => idpServer.listen(0, '127.0.0.1', resolve));
    const fresh = await startHarness({ tenantSso: { idp: `http://127.0.0.1:${(idpServer.address() as AddressInfo).port}` }, clock: () => now });
    try {
      const stored = { tenant: fresh.tenant, uid: 'usr-1', groupUid: 'cld-1', session: 'tok', recheck: '2029-12-31T23:59:00Z' };
      const endless = await fresh.mno.sso.checkSession(stored, { timeoutMs: Number.POSITIVE_INFINITY }).catch((error: unknown) => error);
      expect(endless).toMatchObject({ valid: true, checked: true });
      expect(calls).toBe(1);
      for (const timeoutMs of [3_000_000_000, 0, Number.NaN]) {
        const refused = await fresh.mno.sso.checkSession(stored, { timeoutMs }).catch((error: unknown) => error);
        expect(refused, String(timeoutMs)).toBeInstanceOf(PayloadValidationError);
      }
      expect(calls).toBe(1);
    } finally {
      for (const res of held) res.destroy();
      await fresh.close();
      await new Promise<void>((resolve) => idpServer.close(() => resolve()));
    }
  });
});
