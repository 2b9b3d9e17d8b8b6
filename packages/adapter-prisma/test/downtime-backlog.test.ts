// The worker down for days over PostgreSQL while notifications pile up (see the SDK's
// test/worker/downtime-backlog.test.ts): restarted, it applies the backlog in order, once.
import { afterEach, describe, it } from 'vitest';
import { prismaAdapter } from '../src/index.js';
import { downtimeScenario } from '../../sdk/test/worker/downtime-scenario.js';
import { migratedPg, pgUnavailableReason } from './backends.js';

const unavailable = await pgUnavailableReason();
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

describe.skipIf(unavailable !== null)('restarted after days down (prisma-postgresql)', () => {
  it('applies the newest version of every record once, runs the due poll once, takes over a dead worker\'s jobs once', async () => {
    await downtimeScenario(async (clock) => {
      const { db, prisma } = await migratedPg();
      cleanup = async () => {
        await prisma.$disconnect();
        await db.drop();
      };
      return prismaAdapter(prisma, { clock });
    });
  }, 180_000);
});
