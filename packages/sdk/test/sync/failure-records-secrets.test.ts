/**
 * A record's failure text is kept where a person reads it later: the job's `lastError` (stored,
 * listed by `deadLetters()`), and the `record.failed` event. The runtime logger scrubs the
 * credentials a message carries (the user info of a URL, a Basic token); the same text must not
 * be stored or handed out with them. The failure here is real: the app's own write calls
 * `fetch` on a URL holding a password, and Node's error quotes the URL.
 */
import { JobTypes, type SyncEvent } from '@org/maestrano-sdk';
import { expect, it } from 'vitest';
import { createHarness, GROUP, provisionGroup } from './harness.js';

const PASSWORD = 'Crm-Db-Pa55word';

it("a record's failure stored and reported carries no password of the URL its error quotes", async () => {
  const h = await createHarness({ sync: { maxAttempts: 2 } });
  await provisionGroup(h.storage);
  const events: SyncEvent[] = [];
  h.sync.api.on((e) => events.push(e));
  // The app writes its contacts through its own HTTP API, with Basic credentials in the URL.
  const original = h.app.create;
  h.app.create = (async (...args: unknown[]) => {
    await fetch(`https://crm-app:${PASSWORD}@crm.internal.invalid/api/contacts`, { method: 'POST' });
    return original.apply(h.app, args as never);
  }) as never;
  const person = h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1');
  expect((await h.notify({ people: [person] })).status).toBe(200);
  await h.drain(50);

  const dead = await h.sync.api.deadLetters();
  expect(dead.map((d) => [d.type, d.connecId])).toEqual([[JobTypes.connecRecord, 'p1']]);
  // The failure stays readable: what failed, and where.
  expect(dead[0]!.error?.message).toContain('crm.internal.invalid');
  expect(JSON.stringify(dead)).not.toContain(PASSWORD);
  const stored = await h.storage.jobs.get(dead[0]!.jobId);
  expect(JSON.stringify(stored?.lastError)).not.toContain(PASSWORD);
  const failed = events.filter((e) => e.type === 'record.failed');
  expect(failed).toHaveLength(2);
  expect(JSON.stringify(failed)).not.toContain(PASSWORD);
});
