import pg from 'pg';

/**
 * A `pg.Pool` for a bench's throwaway database. The run ends with `DROP DATABASE … WITH
 * (FORCE)`, which terminates any connection still open (`pool.end()` and Prisma's
 * `$disconnect()` resolve before every socket has closed): an idle client then emits 57P01,
 * which without a listener is an uncaught 'error' event that crashes the run after its figures
 * were measured. Any other idle-client error is printed, not swallowed.
 */
export function benchPool(config: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool(config);
  pool.on('error', (error: Error & { code?: string }) => {
    if (error.code !== '57P01') process.stderr.write(`bench: idle PostgreSQL client error: ${error.message}\n`);
  });
  return pool;
}
