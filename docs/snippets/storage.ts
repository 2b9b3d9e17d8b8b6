/** The three storage adapters; pick one per deployment. */
import { type MongoStorageAdapter, mongoAdapter } from '@org/maestrano-adapter-mongo';
import { migrate, type PrismaClientLike, prismaAdapter } from '@org/maestrano-adapter-prisma';
import { memoryAdapter, type StorageAdapter } from '@org/maestrano-sdk';

// #region memory
// Tests, demos, one process: everything is lost on exit.
export function testStorage(): StorageAdapter {
  return memoryAdapter();
}
// #endregion memory

// #region prisma
// PostgreSQL (or SQLite on one machine) through YOUR Prisma 7 client, whose schema includes
// the adapter's models (see the adapter's README).
export async function prismaStorage(prisma: PrismaClientLike): Promise<StorageAdapter> {
  await migrate({ prisma }); // the SDK's tables; idempotent, safe when several processes start at once
  return prismaAdapter(prisma, { operationTimeoutMs: 15_000 });
}
// #endregion prisma

// #region mongo
// MongoDB (or FerretDB): its own client with bounded timeouts, closed by storage.close().
export async function mongoStorage(url: string): Promise<MongoStorageAdapter> {
  const storage = mongoAdapter({ url, dbName: 'app' });
  await storage.ensureIndexes(); // idempotent: run at deploy or start-up
  return storage;
}
// #endregion mongo
