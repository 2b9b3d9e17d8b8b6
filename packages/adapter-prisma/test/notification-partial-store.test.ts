// A notification body larger than one insert chunk (500 jobs) whose second chunk fails in the
// database (a trigger raising, as a statement lost to an outage would): the route answers 503
// with part of the body stored. Connec!'s resend of the same body must then store exactly the
// rest (no record deduplicated away, none stored twice) and every record is applied once.
import { JobTypes } from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { prismaAdapter } from '../src/index.js';
import { C, createHarness, GROUP, ORG_UID, provisionGroup } from '../../sdk/test/sync/harness.js';
import { migratedPg, migratedSqlite, pgUnavailableReason } from './backends.js';

const unavailable = await pgUnavailableReason();
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);

const RECORDS = 620;
// Each case stores and drains 620 records: 20 s for the file in CI on two cores, and past the
// default 30 s per test when that machine is busier. A bound on a hang, not on speed.
const TIMEOUT = 120_000;
const person = (i: number) => ({
  id: [C(`p-${i}`)],
  first_name: `First${i}`,
  last_name: `Last${i}`,
  group_id: GROUP,
  channel_id: ORG_UID,
  created_at: '2016-10-04T00:36:23Z',
  updated_at: '2016-10-04T00:36:23Z',
});

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

async function scenario(storage: ReturnType<typeof prismaAdapter>, failOn: () => Promise<void>, heal: () => Promise<void>) {
  const h = await createHarness({ storage });
  await provisionGroup(h.storage);
  const body = { people: Array.from({ length: RECORDS }, (_, i) => person(i)) };
  await failOn();
  const first = await h.notify(body);
  expect(first.status).toBe(503);
  const partial = (await h.storage.jobs.counts({ type: JobTypes.connecRecord })).pending;
  expect(partial).toBeGreaterThan(0);
  expect(partial).toBeLessThan(RECORDS);
  await heal();
  const again = await h.notify(body);
  expect(again.status).toBe(200);
  expect(await again.json()).toMatchObject({ received: RECORDS, stored: RECORDS - partial, duplicates: partial });
  expect((await h.storage.jobs.counts({ type: JobTypes.connecRecord })).pending).toBe(RECORDS);
  await h.drain();
  const names = [...h.app.contacts.values()].map((c) => c.lastName).sort();
  expect(names.length).toBe(RECORDS);
  expect(new Set(names).size).toBe(RECORDS);
}

describe('notification body stored in part (second insert chunk fails)', () => {
  it('sqlite: 503, then the resend stores the rest; each record applied once', async () => {
    const { file, prisma } = await migratedSqlite();
    const storage = prismaAdapter(prisma);
    cleanup = async () => {
      await storage.close();
      await prisma.$disconnect();
      file.remove();
    };
    await scenario(
      storage,
      () => prisma.$executeRawUnsafe(`CREATE TRIGGER fail_chunk BEFORE INSERT ON maestrano_jobs WHEN NEW.dedupe_key LIKE '%:p-600:%' BEGIN SELECT RAISE(ABORT, 'outage'); END`).then(() => {}),
      () => prisma.$executeRawUnsafe('DROP TRIGGER fail_chunk').then(() => {}),
    );
  }, TIMEOUT);

  it.skipIf(unavailable !== null)('postgresql: 503, then the resend stores the rest; each record applied once', async () => {
    const { db, prisma } = await migratedPg();
    const storage = prismaAdapter(prisma);
    cleanup = async () => {
      await storage.close();
      await prisma.$disconnect();
      await db.drop();
    };
    await scenario(
      storage,
      async () => {
        await prisma.$executeRawUnsafe(`CREATE FUNCTION fail_chunk() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.dedupe_key LIKE '%:p-600:%' THEN RAISE EXCEPTION 'outage'; END IF; RETURN NEW; END $$`);
        await prisma.$executeRawUnsafe('CREATE TRIGGER fail_chunk BEFORE INSERT ON maestrano_jobs FOR EACH ROW EXECUTE FUNCTION fail_chunk()');
      },
      () => prisma.$executeRawUnsafe('DROP TRIGGER fail_chunk ON maestrano_jobs').then(() => {}),
    );
  }, TIMEOUT);
});
