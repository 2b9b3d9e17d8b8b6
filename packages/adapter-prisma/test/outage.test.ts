// A database that stops answering (packets dropped, as with a network partition), not one
// that refuses: the adapter must still fail every operation within a bounded time with
// StorageError naming it, lose nothing accepted before, and work again afterwards. The
// adapter reaches PostgreSQL through a loopback TCP proxy this test can black-hole.
import net from 'node:net';
import { StorageConflictError, StorageError } from '@org/maestrano-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, prismaAdapter } from '../src/index.js';
import { createPgDatabase, openPgPrisma, PG_SERVER_URL, type PgDatabase, pgUnavailableReason } from './backends.js';

const unavailable = await pgUnavailableReason();
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);
if (unavailable) console.warn(`[adapter-prisma] skipping the black-hole outage test: ${unavailable}`);

class BlackHoleProxy {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private open = true;
  port = 0;

  constructor(
    private readonly upstreamHost: string,
    private readonly upstreamPort: number,
  ) {
    this.server = net.createServer((client) => this.accept(client));
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy has no port');
    this.port = address.port;
  }

  private accept(client: net.Socket): void {
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    client.on('error', () => {});
    // While black-holed, a new connection is accepted and then never answered.
    if (!this.open) return;
    const upstream = net.connect(this.upstreamPort, this.upstreamHost);
    this.sockets.add(upstream);
    upstream.on('close', () => this.sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('data', (chunk) => {
      if (this.open) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (this.open) client.write(chunk);
    });
  }

  /** Drops every byte from now on, in both directions, on old and new connections. */
  cut(): void {
    this.open = false;
  }

  /** The partition heals: connections that lived through it are reset, new ones flow. */
  restore(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.open = true;
  }

  async close(): Promise<void> {
    this.restore();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe.skipIf(unavailable !== null)('prisma-postgresql: database black-holed', () => {
  let db: PgDatabase;
  let proxy: BlackHoleProxy;
  let prisma: ReturnType<typeof openPgPrisma>;

  beforeAll(async () => {
    db = await createPgDatabase('mno_adapter_prisma_outage');
    const server = new URL(PG_SERVER_URL);
    proxy = new BlackHoleProxy(server.hostname, Number(server.port || 5432));
    await proxy.listen();
    const viaProxy = new URL(db.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    prisma = openPgPrisma(viaProxy.toString(), { connectionTimeoutMillis: 1_000, max: 4 });
    await migrate({ prisma });
  });
  afterAll(async () => {
    await prisma?.$disconnect();
    await proxy?.close();
    await db?.drop();
  });

  it('every operation fails with StorageError naming it, nothing accepted is lost, and it works again after', async () => {
    const adapter = prismaAdapter(prisma, { operationTimeoutMs: 2_000 });
    const scope = { tenant: 't', groupId: 'cld-1', entity: 'contact' };
    await adapter.idMaps.insert({ ...scope, connecId: 'c-before', localId: 'l-before' });
    const before = await adapter.jobs.enqueue({ type: 'before', payload: { kept: true } });

    proxy.cut();
    const attempts: [string, () => Promise<unknown>][] = [
      ['groups.get', () => adapter.groups.get('t', 'cld-1')],
      ['users.claim', () => adapter.users.claim('t', 'usr-1', { owner: 'o', ttlMs: 1_000 })],
      ['idMaps.find', () => adapter.idMaps.find(scope, { connecId: 'c-before' })],
      ['idMaps.insert', () => adapter.idMaps.insert({ ...scope, connecId: 'c-during', localId: 'l-during' })],
      ['cursors.advance', () => adapter.cursors.advance({ ...scope, kind: 'import' }, 1, {})],
      ['jobs.enqueue', () => adapter.jobs.enqueue({ type: 'during', payload: null })],
      ['jobs.claim', () => adapter.jobs.claim({ worker: 'w', limit: 5, leaseMs: 1_000 })],
      ['ledger.claim', () => adapter.ledger.claim('charge-1', { owner: 'o', ttlMs: 1_000, intent: null })],
      ['replay.remember', () => adapter.replay.remember('t', 'assertion-1', new Date(Date.now() + 60_000))],
      ['locks.acquire', () => adapter.locks.acquire('lock-1', 'o', 1_000)],
      ['idMaps.insertMany', () => adapter.idMaps.insertMany([{ ...scope, connecId: 'c-during-2', localId: null }])],
      ['locks.acquireMany', () => adapter.locks.acquireMany(['lock-2'], 'o', 1_000)],
      ['locks.releaseMany', () => adapter.locks.releaseMany(['lock-2'], 'o')],
      ['jobs.completeMany', () => adapter.jobs.completeMany([before.id], 'w')],
      ['jobs.wakeMany', () => adapter.jobs.wakeMany(['wait-1'])],
    ];
    const errors = await Promise.all(attempts.map(([, attempt]) => attempt().then(() => null, (err: unknown) => err)));
    errors.forEach((error, index) => {
      expect(error).toBeInstanceOf(StorageError);
      expect(error).not.toBeInstanceOf(StorageConflictError);
      expect(error).toMatchObject({ adapterId: 'prisma', operation: attempts[index]?.[0] });
    });
    proxy.restore();

    // Back: the data from before is intact and every repository answers again.
    expect(await adapter.idMaps.find(scope, { connecId: 'c-before' })).toMatchObject({ localId: 'l-before' });
    expect(await adapter.jobs.get(before.id)).toMatchObject({ type: 'before', payload: { kept: true }, status: 'pending' });
    // The black-holed writes never reached the database.
    expect(await adapter.idMaps.find(scope, { connecId: 'c-during' })).toBeNull();
    expect(await adapter.idMaps.find(scope, { connecId: 'c-during-2' })).toBeNull();
    expect(await adapter.jobs.counts()).toEqual({ pending: 1, running: 0, done: 0, dead: 0 });
    expect(await adapter.locks.acquire('lock-1', 'o', 1_000)).toBe(true);
    expect((await adapter.jobs.claim({ worker: 'w', limit: 5, leaseMs: 1_000 })).map((job) => job.id)).toEqual([before.id]);
  });
});
