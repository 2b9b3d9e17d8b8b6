import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type BatchOp,
  ConnectionError,
  connecId,
  PayloadValidationError,
  ServerError,
  ValidationFailedError,
} from '../src/index.js';
import { APP, GROUP, type Harness, personFields, startHarness } from './helpers.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.server.close();
});

describe('client.batch', () => {
  it('posts to {host}/batch and returns one typed result per op, in order, with a failing op in the middle', async () => {
    const [existing = ''] = h.server.seed(GROUP, 'people', [personFields(9)]);
    const client = h.makeClient({ externalIds: true });
    const results = await client.batch([
      { method: 'post', group: GROUP, collection: 'people', record: { ...personFields(1), id: [{ id: 'per-60', ...APP }] } },
      { method: 'post', group: GROUP, collection: 'people', record: personFields(2, { email: { address: 'invalid' } }) },
      { method: 'put', group: GROUP, collection: 'people', id: existing, record: { job_title: 'CTO', id: [{ id: 'per-55', ...APP }] } },
    ]);

    expect(h.server.requests).toHaveLength(1);
    const request = h.server.requests[0];
    expect(request?.path).toBe('/batch');
    expect(request?.headers['connec-external-ids']).toBe('true');
    expect(request?.body).toEqual({
      sequential: true,
      ops: [
        { method: 'post', url: `/api/v2/${GROUP}/people/`, params: { people: { ...personFields(1), id: [{ id: 'per-60', ...APP }] } } },
        { method: 'post', url: `/api/v2/${GROUP}/people/`, params: { people: personFields(2, { email: { address: 'invalid' } }) } },
        { method: 'put', url: `/api/v2/${GROUP}/people/${existing}`, params: { people: { job_title: 'CTO', id: [{ id: 'per-55', ...APP }] } } },
      ],
    });

    expect(results.map((r) => [r.index, r.ok, r.status])).toEqual([
      [0, true, 201],
      [1, false, 400],
      [2, true, 200],
    ]);
    const [created, failed, updated] = results;
    if (!created?.ok || failed?.ok !== false || !updated?.ok) throw new Error('unexpected result shapes');
    expect(created.record.first_name).toBe('Jane1');
    expect(created.record.id).toContainEqual({ id: 'per-60', ...APP });
    expect(failed.error).toBeInstanceOf(ValidationFailedError);
    expect((failed.error as ValidationFailedError).errors[0]?.message).toBe('email is invalid');
    expect(failed.sent).toBe(true);
    expect(updated.record.job_title).toBe('CTO');
    expect(connecId(updated.record.id)).toBe(existing);

    const stored = h.server.stored(GROUP, 'people');
    expect(stored.map((p) => p.first_name)).toEqual(['Jane9', 'Jane1']);
    expect(stored[0]?.id).toContainEqual({ id: 'per-55', ...APP });
  });

  it('chunks ops (default 50, configurable) and keeps the global order', async () => {
    const ops: BatchOp<'people'>[] = Array.from({ length: 7 }, (_, i) => ({
      method: 'post',
      group: GROUP,
      collection: 'people',
      record: personFields(i + 1),
    }));
    const results = await h.client.batch(ops, { chunkSize: 3, sequential: false });
    expect(h.server.requests.map((r) => (r.body as { ops: unknown[] }).ops.length)).toEqual([3, 3, 1]);
    expect(h.server.requests.every((r) => (r.body as { sequential: boolean }).sequential === false)).toBe(true);
    expect(results.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(results.map((r) => (r.ok ? r.record.first_name : undefined))).toEqual(ops.map((o) => o.record.first_name));

    h.server.requests.length = 0;
    await h.client.batch(Array.from({ length: 51 }, () => ops[0] as BatchOp<'people'>));
    expect(h.server.requests.map((r) => (r.body as { ops: unknown[] }).ops.length)).toEqual([50, 1]);
  });

  it('a chunk that fails as a whole stops the batch; later ops are reported as not sent; nothing is retried for POST', async () => {
    h.server.fault({ path: '/batch', after: 1, action: { kind: 'reply', status: 503 } });
    const ops: BatchOp<'people'>[] = Array.from({ length: 5 }, (_, i) => ({
      method: 'post',
      group: GROUP,
      collection: 'people',
      record: personFields(i + 1),
    }));
    const results = await h.client.batch(ops, { chunkSize: 2 });
    expect(h.server.requests).toHaveLength(2);
    expect(results.map((r) => (r.ok ? 'ok' : r.sent ? 'failed' : 'not-sent'))).toEqual(['ok', 'ok', 'failed', 'failed', 'not-sent']);
    const failed = results[2];
    expect(failed?.ok === false && failed.error).toBeInstanceOf(ServerError);
    expect(h.server.stored(GROUP, 'people').map((p) => p.first_name)).toEqual(['Jane1', 'Jane2']);
  });

  it('retries a batch made only of put ops (idempotent), and a post batch marked idempotent', async () => {
    const [a = '', b = ''] = h.server.seed(GROUP, 'people', [personFields(1), personFields(2)]);
    h.server.fault({ path: '/batch', action: { kind: 'reset' } });
    const results = await h.client.group(GROUP).batch([
      { method: 'put', collection: 'people', id: a, record: { job_title: 'A' } },
      { method: 'put', collection: 'people', id: b, record: { job_title: 'B' } },
    ]);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(h.server.requests).toHaveLength(2);

    h.server.fault({ path: '/batch', action: { kind: 'reset' } });
    const noRetry = await h.client.group(GROUP).batch([{ method: 'post', collection: 'people', record: personFields(3) }]);
    expect(noRetry[0]?.ok === false && noRetry[0].error).toBeInstanceOf(ConnectionError);

    h.server.fault({ path: '/batch', action: { kind: 'reply', status: 502 } });
    const retried = await h.client
      .group(GROUP)
      .batch([{ method: 'post', collection: 'people', record: personFields(4) }], { idempotent: true });
    expect(retried[0]?.ok).toBe(true);
  });

  it('updates the singular company through batch without an id', async () => {
    const results = await h.client.batch([{ method: 'put', group: GROUP, collection: 'company', record: { currency: 'AUD' } }]);
    expect((h.server.requests[0]?.body as { ops: { url: string }[] } | undefined)?.ops[0]?.url).toBe(`/api/v2/${GROUP}/company`);
    expect(results[0]?.ok && results[0].record.currency).toBe('AUD');
  });

  it('rejects invalid ops before sending anything, listing every bad op', async () => {
    const error = await h.client
      .batch([
        { method: 'post', group: GROUP, collection: 'people', record: personFields(1) },
        { method: 'put', group: GROUP, collection: 'people', record: { job_title: 'x' } },
        { method: 'post', group: 'bad/group', collection: 'people', record: {} },
        { method: 'post', group: GROUP, collection: 'people', record: { first_name: 7 as unknown as string } },
        // @ts-expect-error delete is not a batch method
        { method: 'delete', group: GROUP, collection: 'people', record: {} },
      ])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PayloadValidationError);
    expect((error as PayloadValidationError).issues.map((i) => i.path)).toEqual([
      'ops/1/id',
      'ops/2/group',
      'ops/3/record/first_name',
      'ops/4/method',
    ]);
    expect(h.server.requests).toHaveLength(0);
    await expect(h.client.batch([], { chunkSize: 0 })).rejects.toBeInstanceOf(PayloadValidationError);
  });

  it("a group's batch given no array (plain JavaScript) rejects with PayloadValidationError, as client.batch does", async () => {
    const group = h.client.group(GROUP);
    for (const ops of [undefined, null, { method: 'post' }]) {
      // A promise-returning method: a rejection, never a synchronous TypeError from `ops.map`.
      const result = (() => {
        try {
          return group.batch(ops as never);
        } catch (error) {
          return error;
        }
      })();
      expect(result).toBeInstanceOf(Promise);
      const error = await (result as Promise<unknown>).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PayloadValidationError);
      expect((error as PayloadValidationError).issues).toEqual([{ path: 'ops', message: 'expected an array of ops' }]);
    }
    // A null op is reported as one, not as an op without a method.
    const nullOp = await group.batch([null as never]).catch((e: unknown) => e);
    expect((nullOp as PayloadValidationError).issues).toEqual([{ path: 'ops/0', message: 'expected an op object' }]);
    expect(h.server.requests).toHaveLength(0);
  });

  it('rejects invalid per-call timeoutMs and retry like create() does, before anything is sent', async () => {
    const ops: BatchOp<'people'>[] = [{ method: 'post', group: GROUP, collection: 'people', record: personFields(1) }];
    const timeout = await h.client.batch(ops, { timeoutMs: 0 }).catch((e: unknown) => e);
    expect(timeout).toBeInstanceOf(PayloadValidationError);
    expect((timeout as PayloadValidationError).issues.map((i) => i.path)).toEqual(['timeoutMs']);
    const retry = await h.client.batch(ops, { retry: -1 }).catch((e: unknown) => e);
    expect(retry).toBeInstanceOf(PayloadValidationError);
    expect((retry as PayloadValidationError).issues.map((i) => i.path)).toEqual(['retry']);
    await expect(h.client.group(GROUP).batch([], { retry: { limit: 99 } })).rejects.toBeInstanceOf(PayloadValidationError);
    expect(h.server.requests).toHaveLength(0);
  });

  it('reports ops as not sent when the signal was aborted before their request went out', async () => {
    const ops: BatchOp<'people'>[] = Array.from({ length: 3 }, (_, i) => ({
      method: 'post',
      group: GROUP,
      collection: 'people',
      record: personFields(i + 1),
    }));
    const pre = await h.client.batch(ops, { signal: AbortSignal.abort() });
    expect(pre.map((r) => [r.ok, r.ok ? undefined : r.sent, r.ok ? undefined : r.error.code])).toEqual([
      [false, false, 'connection_aborted'],
      [false, false, 'connection_aborted'],
      [false, false, 'connection_aborted'],
    ]);
    expect(h.server.requests).toHaveLength(0);

    // Aborted after the first chunk was answered, before the second went out.
    const controller = new AbortController();
    const client = h.makeClient({
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        const text = await response.text();
        controller.abort();
        return new Response(text, { status: response.status, headers: response.headers });
      },
    });
    const between = await client.batch(ops, { chunkSize: 1, signal: controller.signal });
    expect(between.map((r) => (r.ok ? 'ok' : `${r.sent ? 'sent' : 'not-sent'} ${r.error.code}`))).toEqual([
      'ok',
      'not-sent connection_aborted',
      'not-sent connection_aborted',
    ]);
    expect(h.server.requests).toHaveLength(1);
    expect(h.server.stored(GROUP, 'people').map((p) => p.first_name)).toEqual(['Jane1']);
  });

  it('an op whose request went out and was then aborted is reported as sent (outcome unknown)', async () => {
    h.server.fault({ path: '/batch', action: { kind: 'hang' } });
    const controller = new AbortController();
    const pending = h.client.batch([{ method: 'post', group: GROUP, collection: 'people', record: personFields(1) }], {
      signal: controller.signal,
    });
    // Aborted once the request is in flight (held by the server), not after a fixed 50 ms: on a
    // loaded machine the timer could fire before the request had reached the server.
    for (let i = 0; i < 2_000 && h.server.requests.length === 0; i += 1) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    const [result] = await pending;
    expect(result?.ok === false && [result.sent, result.error.code]).toEqual([true, 'connection_aborted']);
    expect(h.server.requests).toHaveLength(1);
  });

  it('an empty batch sends nothing', async () => {
    expect(await h.client.batch([])).toEqual([]);
    expect(h.server.requests).toHaveLength(0);
  });
});
