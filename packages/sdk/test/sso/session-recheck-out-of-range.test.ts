/**
 * A session check answer is an SsoError (`session_check_failed`) whenever Maestrano's answer
 * cannot be used (PROTOCOL §3.6; `checkSession`'s contract): the app decides whether to fail
 * open or closed on that one type. A `recheck` at the very end of the Date range, moved onto
 * our clock by the answer's `Date` header, lands past that range and must not surface as a bare
 * RangeError from `toISOString` (a 500 in the app's middleware instead of its handled case).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SsoError } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { startHarness } from './harness.js';

describe('mno.sso.checkSession with a recheck the clock correction moves out of the Date range', () => {
  it('answers an SsoError (session_check_failed), not a RangeError', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const idpServer = createServer((_req, res) => {
      // The IdP's clock reads 30 minutes behind ours (within the skew the SDK corrects).
      res.setHeader('date', new Date(now.getTime() - 1_800_000).toUTCString());
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ valid: true, recheck: '+275760-09-13T00:00:00.000Z' }));
    });
    await new Promise<void>((resolve) => idpServer.listen(0, '127.0.0.1', resolve));
    const h = await startHarness({ tenantSso: { idp: `http://127.0.0.1:${(idpServer.address() as AddressInfo).port}` }, clock: () => now });
    try {
      const stored = { tenant: h.tenant, uid: 'usr-1', groupUid: 'cld-1', session: 'tok', recheck: '2029-12-31T23:59:00Z' };
      const error = await h.mno.sso.checkSession(stored).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SsoError);
      expect((error as SsoError).reason).toBe('session_check_failed');
    } finally {
      await h.close();
      await new Promise<void>((resolve) => idpServer.close(() => resolve()));
    }
  });
});
