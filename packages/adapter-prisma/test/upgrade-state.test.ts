// State an earlier release left in the database, read and run by this one (see the scenarios in
// packages/sdk/test/sync): rolling deploys and upgrades keep jobs, id maps and settings.
import { afterEach, describe, it } from 'vitest';
import { plainIdLinkBackRetryOfEarlierRelease } from '../../sdk/test/sync/plain-id-link-back-upgrade-scenario.js';
import { prismaAdapter } from '../src/index.js';
import { migratedPg, migratedSqlite, pgUnavailableReason } from './backends.js';

const unavailable = await pgUnavailableReason();
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

async function sqlite() {
  const { file, prisma } = await migratedSqlite();
  cleanup = async () => {
    await prisma.$disconnect();
    file.remove();
  };
  return prismaAdapter(prisma);
}

async function postgres() {
  const { db, prisma } = await migratedPg();
  cleanup = async () => {
    await prisma.$disconnect();
    await db.drop();
  };
  return prismaAdapter(prisma);
}

describe('state of an earlier release (SQLite)', () => {
  it("a failed plain-id link-back's retry job without linkSubIds still links the record", async () => plainIdLinkBackRetryOfEarlierRelease(await sqlite()), 30_000);
});

describe.skipIf(unavailable !== null)('state of an earlier release (PostgreSQL)', () => {
  it("a failed plain-id link-back's retry job without linkSubIds still links the record", async () => plainIdLinkBackRetryOfEarlierRelease(await postgres()), 30_000);
});
