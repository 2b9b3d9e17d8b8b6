import type { ClaimOptions, JsonValue, LedgerClaim, LedgerEntry, LedgerRepository } from '@org/maestrano-sdk';
import { date, json, jsonCol, jsonText, optDate, optStr, type Row, raw, sql, str, ts } from '../sql.js';
import { claimOptions, invalid, nonEmpty, plus, raceBackoff, RACE_RETRIES, type RepositoryContext, raceLost, storableJson, storableLookup } from './context.js';


function toEntry(row: Row): LedgerEntry {
  return {
    key: str(row, 'key'),
    status: str(row, 'status') === 'done' ? 'done' : 'pending',
    owner: optStr(row, 'owner'),
    claimExpiresAt: optDate(row, 'claim_expires_at'),
    intent: jsonCol(row, 'intent'),
    outcome: row.outcome === null || row.outcome === undefined ? null : jsonCol(row, 'outcome'),
    createdAt: date(row, 'created_at'),
    updatedAt: date(row, 'updated_at'),
  };
}

export function ledgerRepository(ctx: RepositoryContext): LedgerRepository {
  const { db } = ctx;
  const COLUMNS = raw(
    `"key", status, owner, claim_expires_at, ${jsonText(db.provider, 'intent')}, ${jsonText(db.provider, 'outcome')}, created_at, updated_at`,
  );

  return {
    async get(key: string): Promise<LedgerEntry | null> {
      storableLookup('ledger.get', { key });
      const [row] = await db.query('ledger.get', sql`SELECT ${COLUMNS} FROM maestrano_ledger WHERE "key" = ${key}`);
      return row ? toEntry(row) : null;
    },

    async claim(key: string, options: ClaimOptions & { intent: JsonValue }): Promise<LedgerClaim> {
      nonEmpty('ledger.claim', 'key', key);
      claimOptions('ledger.claim', options);
      if (options.intent === undefined) throw invalid('ledger.claim', 'intent is required (use null for none)');
      storableJson('ledger.claim', 'intent', options.intent);
      for (let attempt = 0; attempt < RACE_RETRIES; attempt++) {
        await raceBackoff(attempt);
        const now = ctx.now();
        const expires = plus(now, options.ttlMs);
        const [created] = await db.query(
          'ledger.claim',
          sql`INSERT INTO maestrano_ledger ("key", status, owner, claim_expires_at, intent, outcome, created_at, updated_at)
              VALUES (${key}, 'pending', ${options.owner}, ${ts(expires)}, ${json(options.intent, false)}, NULL, ${ts(now)}, ${ts(now)})
              ON CONFLICT ("key") DO NOTHING RETURNING ${COLUMNS}`,
        );
        if (created) return { state: 'claimed', recovered: false, entry: toEntry(created) };
        // The owner claiming again while its claim is live refreshes it.
        const [own] = await db.query(
          'ledger.claim',
          sql`UPDATE maestrano_ledger SET claim_expires_at = ${ts(expires)}, updated_at = ${ts(now)}
              WHERE "key" = ${key} AND status = 'pending' AND owner = ${options.owner} AND claim_expires_at > ${ts(now)}
              RETURNING ${COLUMNS}`,
        );
        if (own) return { state: 'claimed', recovered: false, entry: toEntry(own) };
        // An expired claim is taken over; the previous owner's intent is kept so the new
        // owner can reconcile against it.
        const [recovered] = await db.query(
          'ledger.claim',
          sql`UPDATE maestrano_ledger SET owner = ${options.owner}, claim_expires_at = ${ts(expires)}, updated_at = ${ts(now)}
              WHERE "key" = ${key} AND status = 'pending' AND claim_expires_at <= ${ts(now)} RETURNING ${COLUMNS}`,
        );
        if (recovered) return { state: 'claimed', recovered: true, entry: toEntry(recovered) };
        const [row] = await db.query('ledger.claim', sql`SELECT ${COLUMNS} FROM maestrano_ledger WHERE "key" = ${key}`);
        if (!row) continue;
        const entry = toEntry(row);
        if (entry.status === 'done') return { state: 'done', entry };
        if (entry.claimExpiresAt && entry.claimExpiresAt.getTime() > now.getTime()) return { state: 'pending', entry };
      }
      throw raceLost('ledger.claim');
    },

    async complete(key: string, owner: string, outcome: JsonValue): Promise<boolean> {
      if (outcome === undefined) throw invalid('ledger.complete', 'outcome is required (use null for none)');
      storableJson('ledger.complete', 'outcome', outcome);
      storableLookup('ledger.complete', { key, owner });
      const now = ctx.now();
      const changed = await db.execute(
        'ledger.complete',
        sql`UPDATE maestrano_ledger SET status = 'done', outcome = ${json(outcome, false)}, claim_expires_at = NULL, updated_at = ${ts(now)}
            WHERE "key" = ${key} AND status = 'pending' AND owner = ${owner}`,
      );
      return changed > 0;
    },

    async release(key: string, owner: string): Promise<void> {
      storableLookup('ledger.release', { key, owner });
      await db.execute(
        'ledger.release',
        sql`DELETE FROM maestrano_ledger WHERE "key" = ${key} AND status = 'pending' AND owner = ${owner}`,
      );
    },
  };
}
