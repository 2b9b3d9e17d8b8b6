/**
 * The session re-check reads Maestrano's `recheck` against the answer's `Date` header (clock
 * skew). A `Date` header that is broken (a proxy with a stale clock, a fixed value) must not push
 * the next re-check years ahead: that would silently end single logout for the session.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startHarness } from './harness.js';

describe('mno.sso.checkSession against an IdP whose Date header is far off', () => {
  it('a Date header years in the past does not move the next re-check years ahead', async () => {
    let now = new Date('2030-01-01T00:00:00Z');
    const idpServer = createServer((_req, res) => {
      // The IdP's answer is right on its own (and our) clock: "again in 3 minutes"; the Date
      // header in front of it is not (a proxy whose clock was never set).
      res.setHeader('date', new Date('2000-01-01T00:00:00Z').toUTCString());
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ valid: true, recheck: new Date(now.getTime() + 180_000).toISOString() }));
    });
    await new Promise<void>((resolve) => idpServer.listen(0, '127.0.0.1', resolve));
    const fresh = await startHarness({ tenantSso: { idp: `http://127.0.0.1:${(idpServer.address() as AddressInfo).port}` }, clock: () => now });
    try {
      const stored = { tenant: fresh.tenant, uid: 'usr-1', groupUid: 'cld-1', session: 'tok', recheck: '2029-12-31T23:59:00Z' };
      const check = await fresh.mno.sso.checkSession(stored);
      expect(check.valid).toBe(true);
      if (!check.valid) return;
      const next = Date.parse(check.session.recheck);
      // Without a bound this is 2060: the IdP would never be asked again in the session's life.
      expect(next - now.getTime()).toBeLessThanOrEqual(2 * 3600_000);
      expect(next).toBeGreaterThan(now.getTime());
      now = new Date('2030-01-01T00:04:00Z');
      // Past Maestrano's 3 minutes, the session is checked again.
      expect(await fresh.mno.sso.checkSession(check.session)).toMatchObject({ valid: true, checked: true });
    } finally {
      await fresh.close();
      await new Promise<void>((resolve) => idpServer.close(() => resolve()));
    }
  });
});
