import type { ClaimOptions, ProvisionClaim } from '@org/maestrano-sdk';
import { optDate, type Row, raw, type Sql, sql, ts } from '../sql.js';
import { plus, raceBackoff, RACE_RETRIES, type RepositoryContext, raceLost } from './context.js';

/**
 * A table whose rows are first a provisioning claim (`claim_owner`, `claim_expires_at`,
 * `recordColumn` NULL) and then, once completed, the record (groups and users).
 */
export interface ProvisionedTable<T> {
  operation: 'groups.claim' | 'users.claim';
  table: string;
  /** The column the completion sets; NULL while the row is only a claim. */
  recordColumn: string;
  columns: Sql;
  /** `WHERE` condition selecting the key's row. */
  key: Sql;
  /** `INSERT … ON CONFLICT DO NOTHING RETURNING tenant` of a fresh claim row. */
  insertClaim(now: Date, expires: Date): Sql;
  decode(row: Row): T;
}

/**
 * The provisioning claim of `GroupRepository.claim` / `UserRepository.claim`: insert a claim
 * row, else refresh the owner's own claim, else take over an expired one, else report what
 * is stored (`exists` or `pending`); a row released in between starts over.
 */
export async function claimProvision<T>(
  ctx: RepositoryContext,
  spec: ProvisionedTable<T>,
  options: ClaimOptions,
): Promise<ProvisionClaim<T>> {
  const { db } = ctx;
  const { operation, key } = spec;
  const table = raw(spec.table);
  const unprovisioned = sql`${key} AND ${raw(spec.recordColumn)} IS NULL`;
  for (let attempt = 0; attempt < RACE_RETRIES; attempt++) {
    await raceBackoff(attempt);
    const now = ctx.now();
    const expires = plus(now, options.ttlMs);
    const inserted = await db.query(operation, spec.insertClaim(now, expires));
    if (inserted.length > 0) return { state: 'claimed', takeover: false };
    // The owner claiming again refreshes its own claim.
    const own = await db.query(
      operation,
      sql`UPDATE ${table} SET claim_expires_at = ${ts(expires)}, updated_at = ${ts(now)}
          WHERE ${unprovisioned} AND claim_owner = ${options.owner} RETURNING tenant`,
    );
    if (own.length > 0) return { state: 'claimed', takeover: false };
    const taken = await db.query(
      operation,
      sql`UPDATE ${table} SET claim_owner = ${options.owner}, claim_expires_at = ${ts(expires)}, updated_at = ${ts(now)}
          WHERE ${unprovisioned} AND claim_expires_at <= ${ts(now)} RETURNING tenant`,
    );
    if (taken.length > 0) return { state: 'claimed', takeover: true };
    const [row] = await db.query(operation, sql`SELECT ${spec.columns} FROM ${table} WHERE ${key}`);
    if (!row) continue; // released in between: try again
    const record = row[spec.recordColumn];
    if (record !== null && record !== undefined) return { state: 'exists', record: spec.decode(row) };
    const claimExpiresAt = optDate(row, 'claim_expires_at');
    if (claimExpiresAt && claimExpiresAt.getTime() > now.getTime()) return { state: 'pending', claimExpiresAt };
  }
  throw raceLost(operation);
}
