/**
 * adapter-mongo as installed, through the guides' `mongoStorage` (mongoAdapter plus
 * ensureIndexes) against the MongoDB-wire server the packaging test started (FerretDB).
 */
import { expect, it } from 'vitest';
import { mongoStorage } from './storage.js';

const url = process.env.PACKAGING_MONGO_URL;

it.skipIf(!url)('the storage contract works through the installed adapter-mongo', async () => {
  const storage = await mongoStorage(url ?? '');
  try {
    const job = { type: 'packaging.check', tenant: 't', groupId: 'g', payload: { n: 1 }, dedupeKey: `k-${Date.now()}` };
    const first = await storage.jobs.enqueue(job);
    expect(first.created).toBe(true);
    expect(await storage.jobs.enqueue(job)).toEqual({ id: first.id, created: false });
    const claimed = await storage.jobs.claim({ worker: 'w1', limit: 10, leaseMs: 60_000, types: ['packaging.check'] });
    expect(claimed.map((j) => j.id)).toEqual([first.id]);
    expect(await storage.jobs.complete(first.id, 'w1')).toBe(true);
  } finally {
    await storage.close();
  }
});
