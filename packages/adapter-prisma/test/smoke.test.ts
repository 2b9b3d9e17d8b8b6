import { afterAll, expect, it } from 'vitest';
import { prismaAdapter } from '../src/index.js';
import { migratedPg, migratedSqlite } from './backends.js';

const pg = await migratedPg();
const lite = await migratedSqlite();
afterAll(async () => {
  await pg.prisma.$disconnect();
  await pg.db.drop();
  await lite.prisma.$disconnect();
  lite.file.remove();
});

for (const [name, prisma] of [['pg', pg.prisma], ['sqlite', lite.prisma]] as const) {
  it(`smoke ${name}`, async () => {
    const a = prismaAdapter(prisma);
    expect(await a.groups.claim('t', 'g', { owner: 'o', ttlMs: 1000 })).toEqual({ state: 'claimed', takeover: false });
    expect((await a.groups.claim('t', 'g', { owner: 'p', ttlMs: 1000 })).state).toBe('pending');
    const g = await a.groups.complete('t', 'g', 'o', { companyId: 'c1', settings: { a: [1, 'x', null] } });
    expect(g.settings).toEqual({ a: [1, 'x', null] });
    expect((await a.groups.claim('t', 'g', { owner: 'p', ttlMs: 1000 })).state).toBe('exists');
    expect(await a.groups.list('t')).toHaveLength(1);
    const j = await a.jobs.enqueue({ type: 'x', payload: 'hello', dedupeKey: 'd1', orderingKey: 'k' });
    const j2 = await a.jobs.enqueue({ type: 'x', payload: null, orderingKey: 'k' });
    expect(await a.jobs.enqueue({ type: 'x', payload: 1, dedupeKey: 'd1' })).toEqual({ id: j.id, created: false });
    const claimed = await a.jobs.claim({ worker: 'w', limit: 10, leaseMs: 1000 });
    expect(claimed.map((c) => c.id)).toEqual([j.id]);
    expect(claimed[0]?.payload).toBe('hello');
    expect(await a.jobs.heartbeat(j.id, 'w', 5000)).toBe(true);
    expect(await a.jobs.complete(j.id, 'w')).toBe(true);
    const c2 = await a.jobs.claim({ worker: 'w', limit: 10, leaseMs: 1000, types: ['x'] });
    expect(c2.map((c) => [c.id, c.payload])).toEqual([[j2.id, null]]);
    expect(await a.jobs.fail(j2.id, 'w', { error: { message: 'boom' }, retryAt: new Date(Date.now() + 1000), waitKey: 'wk' })).toBe('retrying');
    expect(await a.jobs.wake('wk')).toBe(1);
    expect(await a.jobs.counts()).toEqual({ pending: 1, running: 0, done: 1, dead: 0 });
    await a.idMaps.insert({ tenant: 't', groupId: 'g', entity: 'e', connecId: 'c1', localId: null });
    await expect(a.idMaps.insert({ tenant: 't', groupId: 'g', entity: 'e', connecId: 'c1', localId: null })).rejects.toMatchObject({ name: 'StorageConflictError', operation: 'idMaps.insert' });
    expect(await a.idMaps.markApplied({ tenant: 't', groupId: 'g', entity: 'e' }, { connecId: 'c1' }, new Date(5), 'h')).toBe(true);
    expect(await a.idMaps.markApplied({ tenant: 't', groupId: 'g', entity: 'e' }, { connecId: 'c1' }, new Date(5), 'h')).toBe(false);
    expect(await a.idMaps.findManyByConnecIds({ tenant: 't', groupId: 'g', entity: 'e' }, ['c1', 'zz'])).toHaveLength(1);
    expect(await a.cursors.advance({ tenant: 't', groupId: 'g', entity: 'e', kind: 'k' }, 5, { n: 1 })).toBe(true);
    expect(await a.cursors.advance({ tenant: 't', groupId: 'g', entity: 'e', kind: 'k' }, 4, { n: 1 })).toBe(false);
    expect(await a.cursors.advance({ tenant: 't', groupId: 'g', entity: 'e', kind: 'k' }, 5, { n: 1 }, true)).toBe(true);
    expect((await a.cursors.get({ tenant: 't', groupId: 'g', entity: 'e', kind: 'k' }))?.complete).toBe(true);
    expect((await a.ledger.claim('l', { owner: 'o', ttlMs: 100, intent: { x: 1 } })).state).toBe('claimed');
    expect(await a.ledger.complete('l', 'o', { bill: 'b' })).toBe(true);
    expect((await a.ledger.claim('l', { owner: 'p', ttlMs: 100, intent: { x: 1 } })).state).toBe('done');
    expect(await a.replay.remember('t', 'a', new Date(Date.now() + 10000))).toBe(true);
    expect(await a.replay.remember('t', 'a', new Date(Date.now() + 10000))).toBe(false);
    expect(await a.locks.acquire('k', 'o', 1000)).toBe(true);
    expect(await a.locks.acquire('k', 'p', 1000)).toBe(false);
    expect(await a.locks.release('k', 'o')).toBe(true);
    expect((await a.users.upsertMembership('t', 'u', 'g', 'Admin')).created).toBe(true);
    expect((await a.users.upsertMembership('t', 'u', 'g', 'Admin')).changed).toBe(false);
    expect((await a.users.upsertMembership('t', 'u', 'g', 'Member')).changed).toBe(true);
  });
}
