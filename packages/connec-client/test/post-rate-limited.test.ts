/**
 * A POST refused with 429 was not processed, so it is retried even when not marked idempotent
 * (honouring `Retry-After` within the retry policy); a 5xx or a lost connection still is not.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type BatchOp, ConnectionError, RateLimitError, type RetryEvent, ServerError } from '../src/index.js';
import { GROUP, type Harness, personFields, startHarness } from './helpers.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.server.close();
});

async function failure(promise: PromiseLike<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

function recordingClient(events: RetryEvent[], retry: Record<string, unknown> = {}) {
  return h.makeClient({ retry: { baseDelayMs: 1, maxDelayMs: 5, jitter: false, onRetry: (e) => events.push(e), ...retry } });
}

describe('create() refused with 429', () => {
  it('is retried after the Retry-After (seconds) and creates the record once', async () => {
    h.server.fault({ method: 'POST', action: { kind: 'reply', status: 429, headers: { 'retry-after': '0' } } });
    const events: RetryEvent[] = [];
    const created = await recordingClient(events).group(GROUP).people.create(personFields(1));
    expect(created.first_name).toBe('Jane1');
    expect(h.server.requests.map((r) => r.method)).toEqual(['POST', 'POST']);
    expect(h.server.stored(GROUP, 'people').map((p) => p.first_name)).toEqual(['Jane1']);
    // The server's delay (0), not the backoff (1 ms).
    expect(events.map((e) => ({ attempt: e.attempt, delayMs: e.delayMs, method: e.method }))).toEqual([{ attempt: 1, delayMs: 0, method: 'POST' }]);
    expect(events[0]?.error).toBeInstanceOf(RateLimitError);
  });

  it('honours a Retry-After HTTP date', async () => {
    const past = new Date(Date.now() - 60_000).toUTCString();
    h.server.fault({ method: 'POST', action: { kind: 'reply', status: 429, headers: { 'retry-after': past } } });
    const events: RetryEvent[] = [];
    const created = await recordingClient(events).group(GROUP).people.create(personFields(2));
    expect(created.first_name).toBe('Jane2');
    expect(h.server.requests).toHaveLength(2);
    expect(events.map((e) => e.delayMs)).toEqual([0]);
  });

  it('without Retry-After, waits the backoff; gives up after the retry limit with RateLimitError', async () => {
    h.server.fault({ method: 'POST', times: 3, action: { kind: 'reply', status: 429 } });
    const events: RetryEvent[] = [];
    const error = await failure(recordingClient(events, { baseDelayMs: 2 }).group(GROUP).people.create(personFields(1)));
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error).toMatchObject({ status: 429, method: 'POST', retryAfterMs: undefined });
    expect(h.server.requests).toHaveLength(3);
    expect(events.map((e) => e.delayMs)).toEqual([2, 4]);
    expect(h.server.stored(GROUP, 'people')).toHaveLength(0);
  });

  it('is not retried past maxRetryAfterMs, nor with retry: 0, nor when 429 is left out of statusCodes', async () => {
    h.server.fault({ method: 'POST', action: { kind: 'reply', status: 429, headers: { 'retry-after': '120' } } });
    const tooLong = await failure(h.client.group(GROUP).people.create(personFields(1)));
    expect(tooLong).toBeInstanceOf(RateLimitError);
    expect((tooLong as RateLimitError).retryAfterMs).toBe(120_000);
    expect(h.server.requests).toHaveLength(1);

    h.server.fault({ method: 'POST', action: { kind: 'reply', status: 429, headers: { 'retry-after': '0' } } });
    expect(await failure(h.client.group(GROUP).people.create(personFields(1), { retry: 0 }))).toBeInstanceOf(RateLimitError);
    expect(h.server.requests).toHaveLength(2);

    h.server.fault({ method: 'POST', action: { kind: 'reply', status: 429, headers: { 'retry-after': '0' } } });
    const unlisted = await failure(h.client.group(GROUP).people.create(personFields(1), { retry: { statusCodes: [503] } }));
    expect(unlisted).toBeInstanceOf(RateLimitError);
    expect(h.server.requests).toHaveLength(3);
    expect(h.server.stored(GROUP, 'people')).toHaveLength(0);
  });

  it('a 500, 503 or lost connection is still not retried (the POST may have been applied)', async () => {
    for (const status of [500, 503]) {
      h.server.fault({ method: 'POST', action: { kind: 'reply', status, headers: { 'retry-after': '0' } } });
      expect(await failure(h.client.group(GROUP).people.create(personFields(1)))).toBeInstanceOf(ServerError);
    }
    h.server.fault({ method: 'POST', action: { kind: 'reset' } });
    expect(await failure(h.client.group(GROUP).people.create(personFields(1)))).toBeInstanceOf(ConnectionError);
    expect(h.server.requests).toHaveLength(3);
  });
});

describe('a post batch refused with 429', () => {
  const ops = (n: number): BatchOp<'people'>[] =>
    Array.from({ length: n }, (_, i) => ({ method: 'post', group: GROUP, collection: 'people', record: personFields(i + 1) }));

  it('retries the refused chunk only, and every op is applied once', async () => {
    h.server.fault({ path: '/batch', after: 1, action: { kind: 'reply', status: 429, headers: { 'retry-after': '0' } } });
    const results = await h.client.batch(ops(3), { chunkSize: 2 });
    expect(results.map((r) => r.ok)).toEqual([true, true, true]);
    expect(h.server.requests.map((r) => (r.body as { ops: unknown[] }).ops.length)).toEqual([2, 1, 1]);
    expect(h.server.stored(GROUP, 'people').map((p) => p.first_name)).toEqual(['Jane1', 'Jane2', 'Jane3']);
  });

  it('still refused after the retries: the chunk fails as sent with RateLimitError, later chunks not sent', async () => {
    h.server.fault({ path: '/batch', times: 3, action: { kind: 'reply', status: 429, headers: { 'retry-after': '0' } } });
    const results = await h.client.batch(ops(3), { chunkSize: 2 });
    expect(h.server.requests).toHaveLength(3);
    expect(results.map((r) => (r.ok ? 'ok' : r.sent ? 'failed' : 'not-sent'))).toEqual(['failed', 'failed', 'not-sent']);
    const first = results[0];
    expect(first?.ok === false && first.error).toBeInstanceOf(RateLimitError);
    expect(h.server.stored(GROUP, 'people')).toHaveLength(0);
  });

  it('a 503 on a post batch is still not retried', async () => {
    h.server.fault({ path: '/batch', action: { kind: 'reply', status: 503, headers: { 'retry-after': '0' } } });
    const results = await h.client.batch(ops(1));
    expect(h.server.requests).toHaveLength(1);
    expect(results[0]?.ok === false && results[0].error).toBeInstanceOf(ServerError);
  });
});
