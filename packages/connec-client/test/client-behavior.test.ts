import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ApiError,
  AuthenticationError,
  ClientConfigError,
  ConflictError,
  ConnectionError,
  createConnecClient,
  isMaestranoError,
  NotFoundError,
  PayloadValidationError,
  PermissionDeniedError,
  RateLimitError,
  type RetryEvent,
  ResponseValidationError,
  ServerError,
  ValidationFailedError,
} from '../src/index.js';
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

function expectNoSecret(error: unknown, secret: string): void {
  const text = `${String(error)} ${JSON.stringify(error)} ${(error as Error).stack ?? ''}`;
  expect(text).not.toContain(secret);
  expect(text).not.toContain(Buffer.from(`${h.server.apiId}:${secret}`).toString('base64'));
}

describe('error taxonomy: one class per status, never a ky error', () => {
  it('401 from bad credentials -> AuthenticationError, without the key anywhere', async () => {
    const client = createConnecClient({ host: h.server.url, credentials: { apiId: h.server.apiId, apiKey: 'wrong-key-123' } });
    const error = await failure(client.group(GROUP).people.list());
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error).toMatchObject({ code: 'api_authentication', status: 401, service: 'connec', method: 'GET' });
    expect((error as ApiError).url).toBe(`${h.server.url}/api/v2/${GROUP}/people`);
    expect((error as Error).message).toContain('Unauthorized Access');
    expectNoSecret(error, 'wrong-key-123');
    expect(h.server.requests).toHaveLength(1);
  });

  it('401 for a group the app has no access to', async () => {
    const error = await failure(h.client.group('cld-other').people.list());
    expect(error).toBeInstanceOf(AuthenticationError);
  });

  it('403 -> PermissionDeniedError', async () => {
    h.server.fault({ action: { kind: 'reply', status: 403, body: { errors: [{ title: 'Forbidden' }] } } });
    const error = await failure(h.client.group(GROUP).people.list());
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect(error).toMatchObject({ code: 'api_permission_denied', status: 403 });
  });

  it('404 -> NotFoundError with the JSON:API body', async () => {
    const error = await failure(h.client.group(GROUP).people.retrieve('00000000-0000-0000-0000-000000000000'));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ code: 'api_not_found', status: 404 });
    expect((error as NotFoundError).body).toMatchObject({ errors: [{ code: 'resource-not-found' }] });
  });

  it('409 -> ConflictError (POST of a record that already has a Connec! id)', async () => {
    const error = await failure(h.client.group(GROUP).people.create({ ...personFields(1), id: 'some-connec-id' }));
    expect(error).toBeInstanceOf(ConflictError);
    expect(error).toMatchObject({ code: 'api_conflict', status: 409, method: 'POST' });
    expect(h.server.stored(GROUP, 'people')).toHaveLength(0);
  });

  it('400 and 422 -> ValidationFailedError carrying the errors list', async () => {
    h.server.fault({
      action: {
        kind: 'reply',
        status: 422,
        body: { errors: [{ title: 'Invalid', detail: 'name is blank', code: 'blank', source: { pointer: '/people/name' } }] },
      },
    });
    const error = await failure(h.client.group(GROUP).people.update('abc', { first_name: '' }));
    expect(error).toBeInstanceOf(ValidationFailedError);
    expect((error as ValidationFailedError).errors).toEqual([{ field: '/people/name', message: 'name is blank', code: 'blank' }]);
    expect((error as Error).message).toContain('name is blank');
  });

  it('429 -> RateLimitError with retryAfterMs once retries are used up', async () => {
    h.server.fault({ times: 3, action: { kind: 'reply', status: 429, headers: { 'retry-after': '0' } } });
    const error = await failure(h.client.group(GROUP).people.list());
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error).toMatchObject({ code: 'api_rate_limited', status: 429, retryAfterMs: 0 });
    expect(h.server.requests).toHaveLength(3);
  });

  it('5xx -> ServerError after the retries; other statuses -> ApiError', async () => {
    h.server.fault({ times: 3, action: { kind: 'reply', status: 500, body: { errors: [{ title: 'Internal server error' }] } } });
    const error = await failure(h.client.group(GROUP).people.list());
    expect(error).toBeInstanceOf(ServerError);
    expect(error).toMatchObject({ code: 'api_server', status: 500 });
    expect(h.server.requests).toHaveLength(3);

    h.server.fault({ action: { kind: 'reply', status: 418, body: 'teapot' } });
    const other = await failure(h.client.group(GROUP).people.list());
    expect(other).toBeInstanceOf(ApiError);
    expect(other).toMatchObject({ code: 'api_error', status: 418 });
    expect(isMaestranoError(other)).toBe(true);
  });

  it('a 2xx body that is not JSON, or lacks the envelope key -> ResponseValidationError', async () => {
    h.server.fault({ action: { kind: 'reply', status: 200, raw: '<html>maintenance</html>', headers: { 'content-type': 'text/html' } } });
    const html = await failure(h.client.group(GROUP).people.list());
    expect(html).toBeInstanceOf(ResponseValidationError);
    expect((html as ResponseValidationError).issues).toEqual([{ path: '', message: 'body is not valid JSON' }]);
    expect(h.server.requests).toHaveLength(1);

    h.server.fault({ action: { kind: 'reply', status: 200, body: { persons: [] } } });
    const wrongKey = await failure(h.client.group(GROUP).people.list());
    expect(wrongKey).toBeInstanceOf(ResponseValidationError);
    expect((wrongKey as ResponseValidationError).issues[0]?.path).toBe('people');
  });

  it('a connection refused -> ConnectionError (network) after retries', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const events: RetryEvent[] = [];
    const client = h.makeClient({ host: `http://127.0.0.1:${port}`, retry: { baseDelayMs: 1, onRetry: (e) => events.push(e) } });
    const error = await failure(client.group(GROUP).people.list());
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error).toMatchObject({ code: 'connection_error', failure: 'network', service: 'connec' });
    expect(events.map((e) => e.attempt)).toEqual([1, 2]);
  });
});

describe('retries', () => {
  it('honours Retry-After on 429, then succeeds', async () => {
    h.server.seed(GROUP, 'people', [personFields(1)]);
    h.server.fault({ action: { kind: 'reply', status: 429, headers: { 'retry-after': '1' } } });
    const events: RetryEvent[] = [];
    const client = h.makeClient({ retry: { baseDelayMs: 1, jitter: false, onRetry: (e) => events.push(e) } });
    const page = await client.group(GROUP).people.list();
    expect(page.data).toHaveLength(1);
    expect(h.server.requests).toHaveLength(2);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ attempt: 1, delayMs: 1000, method: 'GET' });
    expect(events[0]?.error).toBeInstanceOf(RateLimitError);
  });

  it('does not wait for a Retry-After longer than maxRetryAfterMs: throws with retryAfterMs', async () => {
    h.server.fault({ action: { kind: 'reply', status: 429, headers: { 'retry-after': '120' } } });
    const error = await failure(h.client.group(GROUP).people.list());
    expect(error).toBeInstanceOf(RateLimitError);
    expect((error as RateLimitError).retryAfterMs).toBe(120_000);
    expect(h.server.requests).toHaveLength(1);
  });

  it('a 503 with a Retry-After longer than maxRetryAfterMs -> ServerError carrying retryAfterMs', async () => {
    h.server.fault({ action: { kind: 'reply', status: 503, headers: { 'retry-after': '120' }, body: { errors: [{ title: 'maintenance' }] } } });
    const error = await failure(h.client.group(GROUP).people.list());
    expect(error).toBeInstanceOf(ServerError);
    expect(error).toMatchObject({ code: 'api_server', status: 503, retryAfterMs: 120_000 });
    expect(h.server.requests).toHaveLength(1);

    h.server.fault({ times: 3, action: { kind: 'reply', status: 503, headers: { 'retry-after': '0' } } });
    expect(await failure(h.client.group(GROUP).people.list())).toMatchObject({ status: 503, retryAfterMs: 0 });
    h.server.fault({ times: 3, action: { kind: 'reply', status: 500 } });
    const without = await failure(h.client.group(GROUP).people.list());
    expect(without).toBeInstanceOf(ServerError);
    expect((without as ServerError).retryAfterMs).toBeUndefined();
  });

  it('retries a 503, then succeeds', async () => {
    h.server.seed(GROUP, 'people', [personFields(1)]);
    h.server.fault({ action: { kind: 'reply', status: 503 } });
    const page = await h.client.group(GROUP).people.list();
    expect(page.data[0]?.first_name).toBe('Jane1');
    expect(h.server.requests).toHaveLength(2);
  });

  it('retries a connection reset on GET, then succeeds', async () => {
    const [id = ''] = h.server.seed(GROUP, 'people', [personFields(1)]);
    h.server.fault({ action: { kind: 'reset' } });
    const person = await h.client.group(GROUP).people.retrieve(id);
    expect(person.first_name).toBe('Jane1');
    expect(h.server.requests).toHaveLength(2);
  });

  it('retries PUT on 502', async () => {
    const [id = ''] = h.server.seed(GROUP, 'people', [personFields(1)]);
    h.server.fault({ method: 'PUT', action: { kind: 'reply', status: 502 } });
    const person = await h.client.group(GROUP).people.update(id, { job_title: 'VP' });
    expect(person.job_title).toBe('VP');
    expect(h.server.requests.map((r) => r.method)).toEqual(['PUT', 'PUT']);
  });

  it('does not retry a plain POST (503 or reset), but does when marked idempotent', async () => {
    h.server.fault({ method: 'POST', action: { kind: 'reply', status: 503 } });
    expect(await failure(h.client.group(GROUP).people.create(personFields(1)))).toBeInstanceOf(ServerError);
    expect(h.server.requests).toHaveLength(1);

    h.server.fault({ method: 'POST', action: { kind: 'reset' } });
    const reset = await failure(h.client.group(GROUP).people.create(personFields(1)));
    expect(reset).toBeInstanceOf(ConnectionError);
    expect(h.server.requests).toHaveLength(2);
    expect(h.server.stored(GROUP, 'people')).toHaveLength(0);

    h.server.fault({ method: 'POST', action: { kind: 'reply', status: 503 } });
    const created = await h.client
      .group(GROUP)
      .people.create({ ...personFields(1), opts: { matching_fields: ['first_name'] } }, { idempotent: true });
    expect(created.first_name).toBe('Jane1');
    expect(h.server.requests).toHaveLength(4);
    expect(h.server.stored(GROUP, 'people')).toHaveLength(1);
  });

  it('uses exponential backoff from the configured base, capped, with jitter inside [50 %, 100 %]', async () => {
    h.server.fault({ times: 4, action: { kind: 'reply', status: 500 } });
    const events: RetryEvent[] = [];
    const client = h.makeClient({
      retry: { limit: 3, baseDelayMs: 4, maxDelayMs: 10, jitter: false, onRetry: (e) => events.push(e) },
    });
    await failure(client.group(GROUP).people.list());
    expect(events.map((e) => e.delayMs)).toEqual([4, 8, 10]);

    h.server.fault({ times: 3, action: { kind: 'reply', status: 500 } });
    const jittered: RetryEvent[] = [];
    const withJitter = h.makeClient({ retry: { limit: 2, baseDelayMs: 8, jitter: true, onRetry: (e) => jittered.push(e) } });
    await failure(withJitter.group(GROUP).people.list());
    expect(jittered[0]?.delayMs).toBeGreaterThanOrEqual(4);
    expect(jittered[0]?.delayMs).toBeLessThanOrEqual(8);
    expect(jittered[1]?.delayMs).toBeGreaterThanOrEqual(8);
    expect(jittered[1]?.delayMs).toBeLessThanOrEqual(16);
  });

  it('per-call retry overrides the client policy', async () => {
    h.server.fault({ times: 5, action: { kind: 'reply', status: 500 } });
    await failure(h.client.group(GROUP).people.list({}, { retry: 0 }));
    expect(h.server.requests).toHaveLength(1);
  });
});

describe('timeouts and aborts', () => {
  it('times out a request whose answer never comes -> ConnectionError timeout', async () => {
    h.server.fault({ action: { kind: 'hang' } });
    const error = await failure(h.client.group(GROUP).people.list({}, { timeoutMs: 150, retry: 0 }));
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error).toMatchObject({ code: 'connection_timeout', failure: 'timeout' });
  });

  it('the timeout covers the body: a stalled body times out too, and a GET timeout is retried', async () => {
    h.server.seed(GROUP, 'people', [personFields(1)]);
    h.server.fault({ action: { kind: 'stall-body' } });
    // The retry must be answered within the same timeout: long enough for a loaded machine.
    const page = await h.client.group(GROUP).people.list({}, { timeoutMs: 2_000 });
    expect(page.data).toHaveLength(1);
    expect(h.server.requests).toHaveLength(2);
  });

  it('uses the client timeoutMs', async () => {
    h.server.fault({ action: { kind: 'hang' } });
    const client = h.makeClient({ timeoutMs: 100, retry: 0 });
    expect(await failure(client.group(GROUP).people.list())).toMatchObject({ failure: 'timeout' });
  });

  it('timeoutMs: Infinity means no timeout, per call and for the client', async () => {
    h.server.seed(GROUP, 'people', [personFields(1)]);
    h.server.fault({ action: { kind: 'delay', ms: 50 } });
    const page = await h.client.group(GROUP).people.list({}, { timeoutMs: Number.POSITIVE_INFINITY, retry: 0 });
    expect(page.data).toHaveLength(1);

    const client = h.makeClient({ timeoutMs: Number.POSITIVE_INFINITY, retry: 0 });
    expect(client.config.timeoutMs).toBe(Number.POSITIVE_INFINITY);
    h.server.fault({ action: { kind: 'delay', ms: 50 } });
    expect((await client.group(GROUP).people.list()).data).toHaveLength(1);
    h.server.fault({ action: { kind: 'delay', ms: 50 } });
    expect((await client.group(GROUP).people.list({}, { timeoutMs: 2_147_483_647 })).data).toHaveLength(1);
    expect(h.server.requests).toHaveLength(3);
  });

  it('rejects an invalid per-call timeoutMs with PayloadValidationError before sending anything', async () => {
    const [id = ''] = h.server.seed(GROUP, 'people', [personFields(1)]);
    const people = h.client.group(GROUP).people;
    for (const timeoutMs of [0, -1, 1.5, Number.NaN, Number.NEGATIVE_INFINITY, 2 ** 31, '100' as unknown as number]) {
      const error = await failure(people.list({}, { timeoutMs }));
      expect(error, String(timeoutMs)).toBeInstanceOf(PayloadValidationError);
      expect((error as PayloadValidationError).issues.map((i) => i.path)).toEqual(['timeoutMs']);
      expect((error as Error).message).toContain('timeoutMs must be an integer from 1 to 2147483647 ms, or Infinity');
    }
    expect(await failure(people.retrieve(id, { timeoutMs: -5 }))).toBeInstanceOf(PayloadValidationError);
    expect(await failure(people.update(id, { job_title: 'VP' }, { timeoutMs: 0 }))).toBeInstanceOf(PayloadValidationError);
    expect(h.server.requests).toHaveLength(0);
    expect(() => h.makeClient({ timeoutMs: 2 ** 31 })).toThrow(ClientConfigError);
  });

  it('rejects an invalid per-call retry with PayloadValidationError before sending anything', async () => {
    const [id = ''] = h.server.seed(GROUP, 'people', [personFields(1)]);
    const people = h.client.group(GROUP).people;
    const cases: Array<[unknown, string]> = [
      [-1, 'retry: Too small'],
      [Number.POSITIVE_INFINITY, 'retry: expected a retry count from 0 to 20 or a retry policy object'],
      [1.5, 'retry: expected a retry count'],
      [21, 'retry: Too big'],
      ['3', 'retry: expected a retry count'],
      [{ limt: 2 }, 'retry: Unrecognized key: "limt"'],
      [{ limit: -1 }, 'retry/limit: Too small'],
      [{ baseDelayMs: -5 }, 'retry/baseDelayMs: Too small'],
    ];
    for (const [retry, message] of cases) {
      const error = await failure(people.list({}, { retry: retry as number }));
      expect(error, JSON.stringify(retry)).toBeInstanceOf(PayloadValidationError);
      expect((error as Error).message, JSON.stringify(retry)).toContain(message);
    }
    expect(await failure(people.retrieve(id, { retry: -2 }))).toBeInstanceOf(PayloadValidationError);
    expect(await failure(people.update(id, { job_title: 'VP' }, { retry: { limit: 99 } }))).toBeInstanceOf(PayloadValidationError);
    expect(h.server.requests).toHaveLength(0);
    // Valid overrides still apply: no retry at all, and a policy object.
    h.server.fault({ action: { kind: 'reply', status: 503 } });
    expect(await failure(people.list({}, { retry: 0 }))).toMatchObject({ status: 503 });
    expect(h.server.requests).toHaveLength(1);
  });

  it('an AbortSignal aborts an in-flight request without retrying', async () => {
    h.server.fault({ action: { kind: 'hang' } });
    const controller = new AbortController();
    const pending = failure(h.client.group(GROUP).people.list({}, { signal: controller.signal }));
    // Aborted once the request is in flight (held by the server), not after a fixed 50 ms: on a
    // loaded machine the timer could fire before the request had reached the server.
    for (let i = 0; i < 2_000 && h.server.requests.length === 0; i += 1) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    const error = await pending;
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error).toMatchObject({ code: 'connection_aborted', failure: 'aborted' });
    expect(h.server.requests).toHaveLength(1);
    for (let i = 0; i < 1_000 && h.server.abandonedHangs === 0; i += 1) await new Promise((r) => setTimeout(r, 10));
    expect(h.server.abandonedHangs).toBe(1);
  });

  it('an AbortSignal also interrupts the wait between retries', async () => {
    h.server.fault({ action: { kind: 'reply', status: 503, headers: { 'retry-after': '30' } } });
    const controller = new AbortController();
    // Aborted once the 503 is answered (the client then waits 30 s), not after a fixed 50 ms: on
    // a loaded machine the timer could fire before the request had reached the server.
    let answered!: () => void;
    const answer = new Promise<void>((resolve) => {
      answered = resolve;
    });
    const fetchNoting: typeof fetch = async (input, init) => {
      const res = await globalThis.fetch(input, init);
      answered();
      return res;
    };
    const client = h.makeClient({ retry: { maxRetryAfterMs: 60_000 }, fetch: fetchNoting });
    const pending = failure(client.group(GROUP).people.list({}, { signal: controller.signal }));
    await answer;
    await new Promise((resolve) => setImmediate(resolve));
    controller.abort();
    expect(await pending).toMatchObject({ code: 'connection_aborted' });
    expect(h.server.requests).toHaveLength(1);
  });

  it('many calls in flight on one signal: no MaxListenersExceededWarning, and an abort stops them all', async () => {
    // A sync job pushing `importConcurrency` (up to 64) records at once, all with its one signal.
    const calls = 16;
    h.server.fault({ action: { kind: 'hang' }, times: calls });
    const controller = new AbortController();
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const pending = Array.from({ length: calls }, () => failure(h.client.group(GROUP).people.list({}, { signal: controller.signal })));
      for (let i = 0; i < 1_000 && h.server.requests.length < calls; i += 1) await new Promise((r) => setTimeout(r, 10));
      expect(h.server.requests).toHaveLength(calls);
      // Node reports the warning on the next tick of the listener that crossed the limit.
      await new Promise((resolve) => setImmediate(resolve));
      controller.abort();
      for (const error of await Promise.all(pending)) expect(error).toMatchObject({ code: 'connection_aborted', failure: 'aborted' });
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message)).toEqual([]);
  });

  it('an already-aborted signal sends nothing', async () => {
    const error = await failure(h.client.group(GROUP).people.list({}, { signal: AbortSignal.abort() }));
    expect(error).toMatchObject({ code: 'connection_aborted' });
    expect(h.server.requests).toHaveLength(0);
  });
});

describe('client options', () => {
  it('rejects invalid options with ClientConfigError listing every bad path, never echoing the key', () => {
    let error: unknown;
    try {
      createConnecClient({
        host: 'ftp://nope',
        credentials: { apiId: '', apiKey: 'super-secret-key' },
        timeoutMs: -1,
        // @ts-expect-error unknown options are rejected
        tiemout: 5,
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ClientConfigError);
    const paths = (error as ClientConfigError).issues.map((i) => i.path).sort();
    expect(paths).toEqual(['', 'credentials/apiId', 'host', 'timeoutMs']);
    expect(JSON.stringify(error) + String(error)).not.toContain('super-secret-key');
  });

  it('rejects a host carrying credentials', () => {
    expect(() => createConnecClient({ host: 'https://u:p@api.example.com', credentials: { apiId: 'a', apiKey: 'b' } })).toThrow(
      ClientConfigError,
    );
  });

  it('refuses a host that ends with the base path (it would call /api/v2/api/v2), naming the host to use', () => {
    const make = (host: string, basePath?: string) => () =>
      createConnecClient({ host, credentials: { apiId: 'a', apiKey: 'b' }, ...(basePath !== undefined ? { basePath } : {}) });
    expect(make('http://127.0.0.1:4000/api/v2')).toThrow(
      'host http://127.0.0.1:4000/api/v2 ends with the base path /api/v2, which the client adds to it; use http://127.0.0.1:4000',
    );
    expect(make('https://example.com/connec/api/v2/')).toThrow('use https://example.com/connec');
    expect(make('https://example.com/v3', '/v3/')).toThrow(ClientConfigError);
    // A host under a path of its own, or a base path the host does not end with, is fine.
    expect(make('https://example.com/connec')().config).toMatchObject({ host: 'https://example.com/connec', basePath: '/api/v2' });
    expect(make('https://example.com/api/v2', '')().config).toMatchObject({ host: 'https://example.com/api/v2', basePath: '' });
  });

  it('exposes only non-secret config', () => {
    const client = createConnecClient({ host: 'https://api-connec.maestrano.com/', credentials: { apiId: 'a', apiKey: 'secret-k' } });
    expect(client.config).toEqual({
      host: 'https://api-connec.maestrano.com',
      basePath: '/api/v2',
      externalIds: false,
      timeoutMs: 60_000,
    });
    expect(JSON.stringify(client)).not.toContain('secret-k');
  });
});
