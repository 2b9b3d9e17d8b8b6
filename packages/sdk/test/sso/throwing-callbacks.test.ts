/**
 * `onLogin` and `sso.onError` that throw values `String()` cannot convert (a null-prototype
 * object, an object whose `toString` throws): the route answers 500 and logs the failure; the
 * handler never rejects (the integrator's server would crash or hang on it).
 */
import type { TestUser } from '@org/maestrano-sdk/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100', groupName: 'DoeCorp', groupRole: 'Admin' };
const odd: [string, () => unknown][] = [
  ['a null-prototype object', () => Object.create(null)],
  ['an object whose toString throws', () => ({ toString: () => { throw new Error('no'); } })],
];

let h: Harness;
afterEach(async () => {
  await h?.close();
});

describe('SSO – callbacks throwing values String() cannot convert', () => {
  for (const [what, value] of odd) {
    it(`onLogin throwing ${what}: 500 and a log line naming the route`, async () => {
      const errors: Record<string, unknown>[] = [];
      h = await startHarness({
        logger: { debug() {}, info() {}, warn() {}, error: (_m, f) => errors.push(f ?? {}) },
        extraConfig: {
          onLogin: () => {
            throw value();
          },
        },
      });
      const res = await h.login(alice);
      expect(res.status).toBe(500);
      expect(res.body).toMatchObject({ error: 'internal_error' });
      expect(errors).toEqual([expect.objectContaining({ route: 'ssoConsume' })]);
    });

    it(`sso.onError throwing ${what} for an unknown marketplace: 500`, async () => {
      h = await startHarness({
        sso: {
          onError: () => {
            throw value();
          },
        },
      });
      const res = await fetch(`${h.baseUrl}/maestrano/auth/saml/init/no-such-marketplace`, { redirect: 'manual' });
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({ error: 'internal_error' });
    });
  }
});
