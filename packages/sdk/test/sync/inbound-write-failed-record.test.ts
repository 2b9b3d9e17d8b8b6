/**
 * What a failed inbound write records on the id map at once (`inboundWriteFailed`): the app's
 * error, without the credentials it quotes, and nothing else when the storage is down then.
 */
import { memoryAdapter, type StorageAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createHarness, GROUP, provisionGroup, TENANT } from './harness.js';

const SCOPE = { tenant: TENANT, groupId: GROUP, entity: 'contacts' };

describe('an inbound write that threw', () => {
  it('reports the app error when the storage refuses its record, and the retry writes the version', async () => {
    const inner = memoryAdapter();
    let down = false;
    const recorded: string[] = [];
    const storage: StorageAdapter = {
      ...inner,
      idMaps: {
        ...inner.idMaps,
        update: async (scope, key, patch) => {
          if (patch.lastError) recorded.push(`${down ? 'refused' : 'stored'} ${patch.lastError.code}: ${patch.lastError.message}`);
          if (down && patch.lastError) throw new Error('storage: connection refused');
          return inner.idMaps.update(scope, key, patch);
        },
      },
    };
    const h = await createHarness({ storage, contactConflict: 'connec-wins', sync: { maxAttempts: 1 } });
    await provisionGroup(h.storage);
    const seeded = h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p9');
    await h.notify({ people: [seeded] });
    await h.drain();
    const localId = (await h.storage.idMaps.find(SCOPE, { connecId: 'p9' }))?.localId ?? '';

    const set = h.app.contacts.set.bind(h.app.contacts);
    h.app.contacts.set = () => {
      h.app.contacts.set = set;
      down = true;
      throw Object.assign(new Error('app DB https://app:hunter2@db.local/app unavailable'), { code: 'ECONNRESET' });
    };
    await h.notify({ people: [h.connec.edit(GROUP, 'people', 'p9', { first_name: 'Janet' })] });
    await h.drain();
    down = false;
    const [dead] = await h.sync.api.deadLetters({ tenant: TENANT });
    expect(dead?.error?.message).toBe('app DB https://[redacted]@db.local/app unavailable');
    expect(recorded).toEqual(['refused ECONNRESET: app DB https://[redacted]@db.local/app unavailable', 'refused ECONNRESET: app DB https://[redacted]@db.local/app unavailable']);
    expect(h.app.contacts.get(localId)?.firstName).toBe('Jane');

    expect(await h.sync.api.retryDeadLetter(dead?.jobId ?? '')).toBe(true);
    await h.drain();
    expect(h.app.contacts.get(localId)?.firstName).toBe('Janet');
    expect(await h.storage.idMaps.find(SCOPE, { connecId: 'p9' })).toMatchObject({ lastError: null });
  });
});
