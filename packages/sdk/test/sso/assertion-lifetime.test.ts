import { memoryAdapter } from '@org/maestrano-sdk';
import type { TestUser } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';
import { startHarness } from './harness.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100' };
const DAY = 86_400_000;

/**
 * The assertion id is remembered until the assertion expires; replay records are capped at 7
 * days, so an assertion valid for longer is refused (it could otherwise be replayed, IdP-initiated,
 * once its record expired).
 */
describe('assertion validity window vs the replay-record cap', () => {
  async function idpInitiated(validForMs: number) {
    let now = new Date('2030-01-01T00:00:00Z');
    const clock = () => now;
    const h = await startHarness({ sso: { allowIdpInitiated: true }, clock, storage: memoryAdapter({ clock }) });
    const response = h.idp.response(alice, { acsUrl: h.acsUrl, now, conditionsLifetimeMs: validForMs, subjectLifetimeMs: validForMs });
    return { h, response, advance: (ms: number) => (now = new Date(now.getTime() + ms)) };
  }

  it('refuses an assertion valid for more than 7 days (it was accepted, then replayable after 7 days)', async () => {
    const { h, response, advance } = await idpInitiated(30 * DAY);
    try {
      const first = await h.post(response);
      expect(first.status).toBe(400);
      expect(first.body).toEqual({ error: 'malformed', message: 'The SAML response is valid for too long (more than 7 days)' });
      advance(8 * DAY);
      expect((await h.post(response)).status).toBe(400);
      expect(h.logins).toEqual([]);
      expect(h.app.calls).toEqual([]);
    } finally {
      await h.close();
    }
  });

  it('accepts one valid for 6 days and remembers its id until it expires', async () => {
    const { h, response, advance } = await idpInitiated(6 * DAY);
    try {
      expect((await h.post(response)).status).toBe(200);
      advance(6 * DAY - 60_000);
      const replay = await h.post(response);
      expect(replay.status).toBe(400);
      expect(replay.body['error']).toBe('replay');
      expect(h.logins).toHaveLength(1);
    } finally {
      await h.close();
    }
  });
});
