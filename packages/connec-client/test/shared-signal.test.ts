/**
 * One caller signal shared by many calls (a sync job's `ctx.signal`): an abort stops every call
 * in flight on it (also while they wait between retries), with the caller's reason as the cause,
 * and a call that is over leaves nothing listening on the signal. Counted with Node's
 * `getEventListeners`, against a loopback Connec!.
 */
import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConnectionError } from '../src/index.js';
import { GROUP, type Harness, personFields, startHarness } from './helpers.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.server.close();
});

const listeners = (signal: AbortSignal) => getEventListeners(signal, 'abort').length;

async function failure(promise: PromiseLike<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 2_000 && !check(); i += 1) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
}

describe('one caller signal shared by many calls', () => {
  it('many calls one after the other, and many at once, leave no listener on the signal', async () => {
    const controller = new AbortController();
    for (let i = 0; i < 15; i += 1) await h.client.group(GROUP).people.list({}, { signal: controller.signal });
    expect(listeners(controller.signal)).toBe(0);
    await Promise.all(Array.from({ length: 15 }, () => h.client.group(GROUP).people.list({}, { signal: controller.signal })));
    expect(listeners(controller.signal)).toBe(0);
    // Failed calls too (a 404 each).
    await Promise.all(
      Array.from({ length: 12 }, () => failure(h.client.group(GROUP).people.retrieve('00000000-0000-0000-0000-000000000000', { signal: controller.signal }))),
    );
    expect(listeners(controller.signal)).toBe(0);
  });

  it('calls of two clients on one signal: one finishing leaves the others abortable, the reason kept', async () => {
    const other = h.makeClient();
    h.server.fault({ action: { kind: 'hang' }, times: 4 });
    const controller = new AbortController();
    const pending = [
      failure(h.client.group(GROUP).people.list({}, { signal: controller.signal })),
      failure(other.group(GROUP).people.list({}, { signal: controller.signal })),
      failure(h.client.group(GROUP).people.list({}, { signal: controller.signal })),
      failure(other.group(GROUP).people.list({}, { signal: controller.signal })),
    ];
    await until(() => h.server.requests.length === 4);
    // One more call that completes while the others hang.
    await other.group(GROUP).people.list({}, { signal: controller.signal });
    expect(listeners(controller.signal)).toBe(1);
    const reason = new Error('job cancelled');
    controller.abort(reason);
    for (const error of await Promise.all(pending)) {
      expect(error).toBeInstanceOf(ConnectionError);
      expect(error).toMatchObject({ code: 'connection_aborted', failure: 'aborted' });
      expect((error as ConnectionError).cause).toBe(reason);
    }
    expect(listeners(controller.signal)).toBe(0);
  });

  it('an abort while calls wait between retries stops them all, with the reason', async () => {
    const client = h.makeClient({ retry: { limit: 3, baseDelayMs: 60_000, maxDelayMs: 60_000, jitter: false } });
    h.server.fault({ action: { kind: 'reply', status: 503, body: { errors: [] } }, times: 12 });
    const controller = new AbortController();
    const pending = Array.from({ length: 12 }, () => failure(client.group(GROUP).people.list({}, { signal: controller.signal })));
    await until(() => h.server.requests.length === 12);
    // Every call is now sleeping before its retry: one listener on the signal for all of them.
    await until(() => listeners(controller.signal) === 1);
    const reason = new Error('stop');
    controller.abort(reason);
    for (const error of await Promise.all(pending)) {
      expect(error).toMatchObject({ code: 'connection_aborted', failure: 'aborted' });
      expect((error as ConnectionError).cause).toBe(reason);
    }
    expect(h.server.requests).toHaveLength(12);
  });

  it('a signal already aborted sends nothing and leaves no listener', async () => {
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    const errors = await Promise.all(Array.from({ length: 3 }, () => failure(h.client.group(GROUP).people.list({}, { signal: controller.signal }))));
    for (const error of errors) expect(error).toMatchObject({ code: 'connection_aborted', cause: controller.signal.reason });
    expect(h.server.requests).toHaveLength(0);
    expect(listeners(controller.signal)).toBe(0);
  });

  it('many listings paged with read-ahead on one signal: one listener, and an abort stops every read-ahead', async () => {
    const people = h.client.group(GROUP).people;
    await people.create(personFields(1));
    await people.create(personFields(2));
    const controller = new AbortController();
    const count = 12;
    const lists = Array.from({ length: count }, () => people.list({ top: 1 }, { signal: controller.signal }));
    // The first pages, fully read.
    await Promise.all(lists);
    const before = h.server.requests.length;
    // Each iteration hands over its first page and reads the second ahead, which hangs.
    h.server.fault({ action: { kind: 'hang' }, times: count });
    const iterators = lists.map((list) => list.pages()[Symbol.asyncIterator]());
    for (const iterator of iterators) expect((await iterator.next()).done).toBe(false);
    await until(() => h.server.requests.length === before + count);
    expect(listeners(controller.signal)).toBe(1);
    controller.abort(new Error('job cancelled'));
    for (const error of await Promise.all(iterators.map((iterator) => failure(iterator.next())))) {
      expect(error).toMatchObject({ code: 'connection_aborted', failure: 'aborted' });
    }
    expect(listeners(controller.signal)).toBe(0);
  });
});
