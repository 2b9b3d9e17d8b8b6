import { timingSafeEqual } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Sandbox, startSandbox } from '../src/index.js';
import { basic } from './helpers.js';

// Observe the comparisons the sandbox makes; the real function still decides.
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});

const compared = vi.mocked(timingSafeEqual);

/** Every comparison made was of two SHA-256 digests (so lengths never differ and nothing leaks). */
function expectHashedComparisons(atLeast: number): void {
  expect(compared.mock.calls.length).toBeGreaterThanOrEqual(atLeast);
  for (const [a, b] of compared.mock.calls) {
    expect((a as Buffer).length).toBe(32);
    expect((b as Buffer).length).toBe(32);
  }
}

describe('credential checks are constant-time (SHA-256 + timingSafeEqual)', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await startSandbox({ port: 0, appUrl: 'http://localhost:3000', marketplaces: ['one', 'two'] });
  });
  afterAll(() => sb.stop());
  beforeEach(() => {
    compared.mockClear();
  });

  const ping = (authorization: string) => fetch(`${sb.url}/api/v1/ping`, { headers: { authorization } });

  it('Account API - the right key of either marketplace passes, a wrong key of any length fails; all compared in constant time', async () => {
    const [m1, m2] = sb.credentials.marketplaces;
    if (!m1 || !m2) throw new Error('marketplaces');
    expect((await ping(basic(m1.apiId, m1.apiKey))).status).toBe(200);
    expect((await ping(basic(m2.apiId, m2.apiKey))).status).toBe(200);
    expectHashedComparisons(4);

    compared.mockClear();
    const sameLength = `${m1.apiKey.slice(0, -1)}${m1.apiKey.endsWith('x') ? 'y' : 'x'}`;
    for (const key of [sameLength, m1.apiKey.slice(0, 3), `${m1.apiKey}extra`, m2.apiKey]) {
      const res = await ping(basic(m1.apiId, key));
      expect(res.status, key).toBe(401);
      expect(await res.json()).toEqual({ success: false, errors: { authentication: ['Invalid API token'] }, data: {} });
    }
    expectHashedComparisons(4);
  });

  it('dev-platform document - key and secret are both compared in constant time, even when the key is wrong', async () => {
    const { apiKey, apiSecret } = sb.credentials.environment;
    const get = (authorization: string) => fetch(sb.marketplacesUrl, { headers: { authorization } });
    expect((await get(basic(apiKey, apiSecret))).status).toBe(200);
    expectHashedComparisons(2);

    compared.mockClear();
    expect((await get(basic('wrong-key', apiSecret))).status).toBe(401);
    expect(compared).toHaveBeenCalledTimes(2); // no short-circuit on the key
    expect((await get(basic(apiKey, 'nope'))).status).toBe(401);
    expect((await get(basic(apiKey, `${apiSecret}x`))).status).toBe(401);
    expectHashedComparisons(6);
  });
});
