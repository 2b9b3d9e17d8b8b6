// The shared storage conformance suite against real databases: PostgreSQL (a throwaway
// database on 127.0.0.1:5432 or MAESTRANO_TEST_PG_URL, created and dropped here) and
// SQLite (a temp file). Both are migrated with migrate(); the inspector reads raw rows
// through its own driver connection.
import { describeStorageAdapter } from '@org/maestrano-sdk/testing/storage';
import { migrate, prismaAdapter } from '../src/index.js';
import {
  createPgDatabase,
  createSqliteFile,
  openPgPrisma,
  openSqlitePrisma,
  pgUnavailableReason,
  setPgDatabaseOnline,
} from './backends.js';
import { pgChannel, type RawChannel, sqliteChannel } from './inspectors.js';

const pgUnavailable = await pgUnavailableReason();
if (pgUnavailable && process.env.CI) {
  // In CI every backend must run: an unreachable PostgreSQL fails the run instead of skipping.
  throw new Error(`CI requires PostgreSQL for the prisma-postgresql conformance run: ${pgUnavailable}`);
}

let pgRaw: RawChannel | undefined;
describeStorageAdapter({
  name: 'prisma-postgresql',
  unavailable: pgUnavailable,
  async setup({ clock }) {
    const db = await createPgDatabase();
    const prisma = openPgPrisma(db.url);
    await migrate({ prisma });
    const raw = pgChannel(db.url);
    pgRaw = raw;
    const peers: { $disconnect(): Promise<void> }[] = [];
    return {
      adapter: prismaAdapter(prisma, { clock }),
      inspect: raw.inspect,
      // A real outage of this throwaway database: refuse new connections and kill the open
      // ones (the adapter's pool included), then allow connections again.
      outage: { cut: () => setPgDatabaseOnline(db.name, false), restore: () => setPgDatabaseOnline(db.name, true) },
      async createPeer() {
        const peer = openPgPrisma(db.url);
        peers.push(peer);
        return prismaAdapter(peer, { clock });
      },
      async teardown() {
        for (const peer of peers) await peer.$disconnect();
        await prisma.$disconnect();
        await raw.close();
        await db.drop();
      },
    };
  },
  async reset() {
    await pgRaw?.clear();
  },
});

let sqliteRaw: RawChannel | undefined;
describeStorageAdapter({
  name: 'prisma-sqlite',
  skip: {
    outage: 'SQLite is an embedded file opened in-process: there is no server or network to lose (PostgreSQL covers the case)',
  },
  async setup({ clock }) {
    const file = createSqliteFile();
    const prisma = openSqlitePrisma(file.path);
    await migrate({ prisma });
    const raw = sqliteChannel(file.path);
    sqliteRaw = raw;
    const peers: { $disconnect(): Promise<void> }[] = [];
    return {
      adapter: prismaAdapter(prisma, { clock }),
      inspect: raw.inspect,
      // A second connection to the same file, as a second process would open.
      async createPeer() {
        const peer = openSqlitePrisma(file.path);
        peers.push(peer);
        return prismaAdapter(peer, { clock });
      },
      async teardown() {
        for (const peer of peers) await peer.$disconnect();
        await prisma.$disconnect();
        await raw.close();
        file.remove();
      },
    };
  },
  async reset() {
    await sqliteRaw?.clear();
  },
});
