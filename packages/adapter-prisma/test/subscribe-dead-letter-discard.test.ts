// A dead `billing.subscribe` job whose group's ledger claim is unrecorded (its attempt POSTed a
// recurring bill whose outcome is unknown), on PostgreSQL (see the SDK's
// test/billing/subscribe-dead-letter-discard.test.ts): `mno.worker.discardDeadLetter` refuses it
// and its retry adopts the bill, read back from the adapter's ledger and jobs tables.
import { afterAll, afterEach, beforeAll, describe, it } from 'vitest';
import { type AccountApiServer, startAccountApiServer } from '../../sdk/test/billing/account-api-server.js';
import { discardRefusedThenRetryReconciles } from '../../sdk/test/billing/subscribe-dead-letter-scenario.js';
import { prismaAdapter } from '../src/index.js';
import { migratedPg, pgUnavailableReason } from './backends.js';

const unavailable = await pgUnavailableReason();
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);

let api: AccountApiServer;
let cleanup: (() => Promise<void>) | null = null;
beforeAll(async () => {
  api = await startAccountApiServer();
});
afterAll(async () => {
  await api.close();
});
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

describe.skipIf(unavailable !== null)('billing.subscribe dead letter with an unrecorded claim (prisma-postgresql)', () => {
  it('discardDeadLetter refuses it (BillingError), the dead letter stays; retried, it adopts the bill its dead attempt created', async () => {
    await discardRefusedThenRetryReconciles(api, async (clock) => {
      const { db, prisma } = await migratedPg();
      cleanup = async () => {
        await prisma.$disconnect();
        await db.drop();
      };
      return prismaAdapter(prisma, { clock });
    });
  }, 60_000);
});
