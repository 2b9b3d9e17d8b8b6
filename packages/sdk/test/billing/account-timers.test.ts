/**
 * Timers of the Account API client: Node turns a setTimeout delay above 2^31-1 ms (about 24.8
 * days), or Infinity, into 1 ms. A long timeout must not become an immediate one, and a long
 * `Retry-After` honoured under a large `backoffLimitMs` must not become an immediate retry.
 */
import { describe, expect, it } from 'vitest';
import { createAccountClient } from '../../src/account/index.js';
import { ConnectionError, PayloadValidationError } from '../../src/errors/index.js';
import { useAccountApi } from './helpers.js';

const server = useAccountApi('cld-1');

const tenant = () => ({ api: { id: server().apiId, key: server().apiKey, host: server().url, base: '/api/v1/' } });

describe('Account API client timers', () => {
  it('Infinity (no timeout) is not an immediate timeout', async () => {
    const client = createAccountClient(tenant(), { timeouts: { totalMs: Number.POSITIVE_INFINITY, connectMs: Number.POSITIVE_INFINITY }, retry: { limit: 0 } });
    const groups = await client.groups.list();
    expect(groups.map((g) => g.id)).toContain('cld-1');
  });

  it('a timeout no timer can hold is refused before anything is sent, not turned into 1 ms', async () => {
    const client = createAccountClient(tenant());
    for (const totalMs of [3_000_000_000, Number.NaN, -1, 0]) {
      const error = await client.groups.list({}, { timeouts: { totalMs } }).catch((e: unknown) => e);
      expect(error, String(totalMs)).toBeInstanceOf(PayloadValidationError);
    }
    expect(server().requests).toHaveLength(0);
  });

  it('a Retry-After of a month under an uncapped backoff is waited for, not retried at once', async () => {
    server().faults.push({ status: 503, times: 1, method: 'GET', retryAfter: String(30 * 86_400) });
    const client = createAccountClient(tenant(), { retry: { limit: 1, backoffLimitMs: Number.POSITIVE_INFINITY } });
    const error = await client.groups.list({}, { signal: AbortSignal.timeout(300) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error).toMatchObject({ failure: 'aborted' });
    // Still waiting when aborted: the retry was not sent after 1 ms.
    expect(server().requests).toHaveLength(1);
  });
});
