import { memoryAdapter } from '@org/maestrano-sdk';
import type { TestUser } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';
import { startHarness } from './harness.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100' };
const HOUR = 3_600_000;

/**
 * Every login stores its assertion id (`storage.replay`) until the assertion expires (minutes).
 * A process that serves logins for weeks must not keep every id it ever saw: the expired ones
 * are deleted as logins go on, without the app having to call `replay.purgeExpired` itself.
 */
describe('SAML replay records over a long-running process', () => {
  it('does not keep the ids of expired assertions (one record per login, forever)', async () => {
    let now = new Date('2030-01-01T00:00:00Z');
    const clock = () => now;
    const storage = memoryAdapter({ clock });
    const h = await startHarness({ clock, storage });
    try {
      const logins = 24;
      for (let i = 0; i < logins; i++) {
        const answer = await h.login(alice, { now });
        expect(answer.status).toBe(200);
        // An hour between logins: each assertion (valid 3 minutes) has long expired at the next.
        now = new Date(now.getTime() + HOUR + 60_000);
      }
      expect(h.logins).toHaveLength(logins);
      // What the SDK left in storage: purging now removes every expired record still held.
      const held = await storage.replay.purgeExpired();
      expect(held).toBeLessThanOrEqual(2);
    } finally {
      await h.close();
    }
  });
});
