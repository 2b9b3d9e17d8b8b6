import { ConfigError, type StorageAdapter, type StorageOptions } from '@org/maestrano-sdk';
import { detectProvider, Executor, type PrismaClientLike, type PrismaProvider } from './client.js';
import { cursorRepository } from './repositories/cursors.js';
import { groupRepository } from './repositories/groups.js';
import { idMapRepository } from './repositories/id-maps.js';
import { jobRepository } from './repositories/jobs.js';
import { ledgerRepository } from './repositories/ledger.js';
import { lockRepository, replayRepository } from './repositories/replay-locks.js';
import type { RepositoryContext } from './repositories/context.js';
import { StatisticsRefresher } from './repositories/statistics.js';
import { userRepository } from './repositories/users.js';

export interface PrismaAdapterOptions extends StorageOptions {
  /**
   * The database behind the client. Default: read from the generated client
   * (`postgresql` or `sqlite`); set it when your client does not expose it.
   */
  provider?: PrismaProvider;
  /**
   * Upper bound for one storage operation, in ms, so a database that stops answering
   * surfaces as a `StorageError` instead of a hang. Default 15000; 0 disables it; at most
   * 2147483647 (what a timer holds). Also configure the driver (for `pg`:
   * `connectionTimeoutMillis`, `statement_timeout`).
   */
  operationTimeoutMs?: number;
  /**
   * PostgreSQL only: refresh the planner statistics of the id-map table (`ANALYZE` of its
   * lookup columns, in the background) when a group's maps of one entity cross 1,000, 10,000
   * and 100,000 rows. Without fresh statistics PostgreSQL answers id-map lookups of a newly
   * grown group by scanning the whole group, and an initial import slows down with every
   * page until autovacuum next analyzes the table. Default true; turn it off if your
   * database role may not run `ANALYZE` or you schedule it yourself.
   */
  refreshStatistics?: boolean;
}

const OPTION_KEYS: readonly string[] = ['clock', 'operationTimeoutMs', 'provider', 'refreshStatistics'] satisfies (keyof PrismaAdapterOptions)[];

const DEFAULT_OPERATION_TIMEOUT_MS = 15_000;
/** The longest delay a Node timer holds (2^31-1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * A `StorageAdapter` on the application's own Prisma 7 client (PostgreSQL or SQLite, with
 * the models of `prisma/schema.prisma` migrated). Every operation is one atomic SQL
 * statement (or a short sequence of individually atomic ones), so no interactive
 * transaction is ever held. `close()` never disconnects the client: it belongs to the app.
 */
export function prismaAdapter(prisma: PrismaClientLike, options: PrismaAdapterOptions = {}): StorageAdapter {
  // Not a client (undefined from a failed import, the driver adapter `new PrismaPg(…)`, a
  // promise): said here, rather than a TypeError now or a StorageError at the first call.
  if (typeof prisma !== 'object' || prisma === null || typeof (prisma as Partial<PrismaClientLike>).$queryRawUnsafe !== 'function') {
    const message = 'must be a Prisma 7 client (new PrismaClient({ adapter }))';
    throw new ConfigError(`prismaAdapter: the first argument ${message}`, { issues: [{ path: 'prisma', message }] });
  }
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('prismaAdapter: options must be an object', { issues: [{ path: '(root)', message: 'must be an object' }] });
  }
  // A misspelt key (`operationTimeout`, `refreshStats`) would silently fall back to its default.
  const unknown = Object.keys(options).filter((key) => !OPTION_KEYS.includes(key));
  if (unknown.length > 0) {
    const message = `unknown option (expected one of ${OPTION_KEYS.join(', ')})`;
    throw new ConfigError(`prismaAdapter: ${unknown.map((key) => `${key}: ${message}`).join('; ')}`, { issues: unknown.map((path) => ({ path, message })) });
  }
  if (options.clock !== undefined && typeof options.clock !== 'function') {
    throw new ConfigError('prismaAdapter: clock must be a function returning a Date', { issues: [{ path: 'clock', message: 'must be a function returning a Date' }] });
  }
  // A provider given but misspelt (`'postgres'`) is named as such, not "cannot tell from this client".
  if (options.provider !== undefined && options.provider !== 'postgresql' && options.provider !== 'sqlite') {
    throw new ConfigError("prismaAdapter: provider must be 'postgresql' or 'sqlite'", {
      issues: [{ path: 'provider', message: "must be 'postgresql' or 'sqlite'" }],
    });
  }
  const provider = options.provider ?? detectProvider(prisma);
  if (provider !== 'postgresql' && provider !== 'sqlite') {
    throw new ConfigError(
      "prismaAdapter: cannot tell the database provider from this client; pass { provider: 'postgresql' | 'sqlite' }",
      { issues: [{ path: 'provider', message: 'required: postgresql or sqlite' }] },
    );
  }
  const timeoutMs = options.operationTimeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS;
  // A timer fires a delay above 2^31-1 ms after 1 ms: every operation would time out at once.
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_TIMER_MS) {
    throw new ConfigError(`prismaAdapter: operationTimeoutMs must be a number from 0 (no bound) to ${MAX_TIMER_MS}`, {
      issues: [{ path: 'operationTimeoutMs', message: `must be a number from 0 (no bound) to ${MAX_TIMER_MS}` }],
    });
  }
  const clock = options.clock ?? (() => new Date());
  const db = new Executor(prisma, provider, timeoutMs);
  const statistics = new StatisticsRefresher(db, provider === 'postgresql' && options.refreshStatistics !== false);
  const ctx: RepositoryContext = { db, now: clock, statistics };

  return {
    id: 'prisma',
    // Every operation is one atomic statement (or a short retried sequence of them); no
    // multi-statement transaction is held, as on MongoDB.
    capabilities: { transactions: false },
    groups: groupRepository(ctx),
    users: userRepository(ctx),
    idMaps: idMapRepository(ctx),
    cursors: cursorRepository(ctx),
    jobs: jobRepository(ctx),
    ledger: ledgerRepository(ctx),
    replay: replayRepository(ctx),
    locks: lockRepository(ctx),
    async close() {
      // The client is the app's; only the adapter's own background work is waited for.
      await statistics.settled();
    },
  };
}
