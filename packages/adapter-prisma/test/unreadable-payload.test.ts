// A job row whose payload cannot be read (stored text that is not JSON: a corrupted file or a
// hand edit; SQLite stores the JSON column as text) must not fail the claim it comes back in:
// that claim has already leased every row and counted its attempt, so the healthy jobs claimed
// beside it would be leased again and again, never run and never dead-lettered.
import { afterEach, describe, expect, it } from 'vitest';
import { prismaAdapter } from '../src/index.js';
import { migratedSqlite } from './backends.js';

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

describe('a job whose stored payload is not JSON (SQLite)', () => {
  it('is dead-lettered with the reason by the claim, which hands out the healthy jobs claimed with it', async () => {
    const { file, prisma } = await migratedSqlite();
    cleanup = async () => {
      await prisma.$disconnect();
      file.remove();
    };
    const adapter = prismaAdapter(prisma);
    const ids: string[] = [];
    for (let n = 1; n <= 4; n++) ids.push((await adapter.jobs.enqueue({ type: 'work', payload: { n }, orderingKey: n === 2 ? 'k' : null })).id);
    await prisma.$executeRawUnsafe(`UPDATE maestrano_jobs SET payload = '{"n": "trunc' WHERE id = ${Number(ids[1])}`);

    const claimed = await adapter.jobs.claim({ worker: 'w', limit: 10, leaseMs: 60_000 });
    expect(claimed.map((j) => j.payload)).toEqual([{ n: 1 }, { n: 3 }, { n: 4 }]);
    const bad = await adapter.jobs.get(ids[1] as string);
    expect(bad).toMatchObject({ status: 'dead', payload: null, leaseOwner: null, lastError: { code: 'unreadable_payload' } });
    expect(bad?.lastError?.message).toContain('not JSON');
    const dead = await adapter.jobs.listDead();
    expect(dead.map((j) => j.id)).toEqual([ids[1]]);
    // Nothing is left leased to nobody: the next claim finds no job, the healthy ones complete.
    expect(await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: 60_000 })).toEqual([]);
    for (const job of claimed) expect(await adapter.jobs.complete(job.id, 'w')).toBe(true);
    expect(await adapter.jobs.counts()).toMatchObject({ pending: 0, running: 0, done: 3, dead: 1 });
  });
});
