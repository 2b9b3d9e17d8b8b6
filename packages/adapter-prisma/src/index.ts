// Public API of @org/maestrano-adapter-prisma. Explicit named exports only.

// --- adapter --------------------------------------------------------------------------
export { prismaAdapter } from './prisma-adapter.js';
export type { PrismaAdapterOptions } from './prisma-adapter.js';
export type { PrismaClientLike, PrismaProvider, PrismaTransactionLike } from './client.js';

// --- errors ---------------------------------------------------------------------------
export { toStorageError } from './errors.js';

// --- migrations -----------------------------------------------------------------------
export { migrate, migrationsDirectory, schemaFragmentPath } from './migrate.js';
export type { MigrateOptions, MigrateResult } from './migrate.js';
