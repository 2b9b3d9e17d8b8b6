import type {
  ClaimJobsOptions,
  EnqueueResult,
  FailOutcome,
  JobError,
  JobInput,
  JobRecord,
  JobRepository,
  JobStatus,
  JsonObject,
  JsonValue,
  StorageOperation,
} from '@org/maestrano-sdk';
import {
  bigint,
  chunks,
  date,
  inBigintList,
  inList,
  join,
  json,
  jsonCol,
  jsonText,
  num,
  optDate,
  optStr,
  type Row,
  raw,
  type Sql,
  type SqlProvider,
  sql,
  str,
  text,
  ts,
} from '../sql.js';
import {
  invalid,
  nonEmpty,
  plus,
  positiveInt,
  raceBackoff,
  RACE_RETRIES,
  type RepositoryContext,
  raceLost,
  storableJson,
  storableLookup,
  storableText,
  validDate,
  wellFormedText,
} from './context.js';

function jobColumns(provider: SqlProvider, prefix: string): Sql {
  const c = (name: string) => `${prefix}${name}`;
  return raw(
    [
      c('id'), c('type'), c('tenant'), c('group_id'), jsonText(provider, c('payload')), c('dedupe_key'), c('ordering_key'),
      c('wait_key'), c('status'), c('attempts'), c('max_attempts'), c('run_at'), c('lease_owner'), c('lease_expires_at'),
      jsonText(provider, c('last_error')), c('created_at'), c('updated_at'), c('completed_at'),
    ].join(', '),
  );
}

const DEFAULT_MAX_ATTEMPTS = 8;
const ENQUEUE_CHUNK = 500;
/** Ids or wait keys per statement of the batch updates: SQLite binds at most 32766 parameters. */
const KEY_BATCH = 500;
/**
 * Done jobs one statement of `purgeCompleted` deletes. On SQLite the driver runs a statement
 * synchronously under the file's write lock: a week of notified records in one DELETE stopped
 * the process (and every other writer of the file) for seconds. On PostgreSQL one DELETE of a
 * long backlog (retention turned on for a deployment that kept every job) outlasts a
 * `statement_timeout`, and so failed at every hourly try.
 */
const PURGE_BATCH = { sqlite: 1_000, postgresql: 10_000 } as const;
const STATUSES: JobStatus[] = ['pending', 'running', 'done', 'dead'];

function jobStatus(value: string): JobStatus {
  return value === 'running' || value === 'done' || value === 'dead' ? value : 'pending';
}

function toJobError(row: Row): JobError | null {
  const value = jsonCol(row, 'last_error');
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const error: JobError = { message: typeof value.message === 'string' ? value.message : '' };
  if (typeof value.code === 'string') error.code = value.code;
  return error;
}

/** The row's payload, or why it cannot be read (stored text that is not JSON: corrupted, or written by hand). */
function readPayload(row: Row): { ok: true; value: JsonValue } | { ok: false; reason: string } {
  try {
    return { ok: true, value: jsonCol(row, 'payload') };
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * A stored job. An unreadable payload reads as null (its dead letter's `lastError` says why), so
 * one bad row never hides the others. `payload`: the row's payload when the caller read it already.
 */
function toJob(row: Row, payload = readPayload(row)): JobRecord {
  return {
    id: str(row, 'id'),
    type: str(row, 'type'),
    tenant: optStr(row, 'tenant'),
    groupId: optStr(row, 'group_id'),
    payload: payload.ok ? payload.value : null,
    dedupeKey: optStr(row, 'dedupe_key'),
    orderingKey: optStr(row, 'ordering_key'),
    waitKey: optStr(row, 'wait_key'),
    status: jobStatus(str(row, 'status')),
    attempts: num(row, 'attempts'),
    maxAttempts: num(row, 'max_attempts'),
    runAt: date(row, 'run_at'),
    leaseOwner: optStr(row, 'lease_owner'),
    leaseExpiresAt: optDate(row, 'lease_expires_at'),
    lastError: toJobError(row),
    createdAt: date(row, 'created_at'),
    updatedAt: date(row, 'updated_at'),
    completedAt: optDate(row, 'completed_at'),
  };
}

/** Job ids are the decimal text of a BIGINT; anything else names no job. */
function jobId(id: string): string | null {
  return /^[1-9][0-9]{0,17}$/.test(id) ? id : null;
}

/** Dedupe-key order of a batch's inserts (code-unit order, keyless last): the same in every process. */
function compareDedupeKeys(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return a < b ? -1 : 1;
}

function byDueOrder(a: JobRecord, b: JobRecord): number {
  const due = a.runAt.getTime() - b.runAt.getTime() || a.createdAt.getTime() - b.createdAt.getTime();
  if (due !== 0) return due;
  return BigInt(a.id) < BigInt(b.id) ? -1 : BigInt(a.id) > BigInt(b.id) ? 1 : 0;
}

export function jobRepository(ctx: RepositoryContext): JobRepository {
  const { db } = ctx;
  const pg = db.provider === 'postgresql';
  const COLUMNS = jobColumns(db.provider, '');
  const J_COLUMNS = jobColumns(db.provider, 'j.');

  function validate(operation: StorageOperation, job: JobInput): void {
    nonEmpty(operation, 'type', job.type);
    positiveInt(operation, 'maxAttempts', job.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);
    if (job.runAt !== undefined) validDate(operation, 'runAt', job.runAt);
    if (job.payload === undefined) throw invalid(operation, 'payload is required (use null for none)');
    storableJson(operation, 'payload', job.payload);
    if (job.dedupeKey !== undefined && job.dedupeKey !== null) nonEmpty(operation, 'dedupeKey', job.dedupeKey);
    storableText(operation, 'tenant', job.tenant);
    storableText(operation, 'groupId', job.groupId);
    storableText(operation, 'orderingKey', job.orderingKey);
  }

  /** The VALUES row of one validated job (led by its id when given). */
  function jobValues(job: JobInput, now: Date, id?: bigint): Sql {
    const idValue = id === undefined ? raw('') : sql`${bigint(String(id))}, `;
    return sql`(${idValue}${job.type}, ${job.tenant ?? null}, ${job.groupId ?? null}, ${json(job.payload, false)}, ${job.dedupeKey ?? null},
      ${job.orderingKey ?? null}, 'pending', 0, ${job.maxAttempts ?? DEFAULT_MAX_ATTEMPTS}, ${ts(job.runAt ?? now)}, ${ts(now)}, ${ts(now)})`;
  }

  const INSERT_JOBS = raw(`INSERT INTO maestrano_jobs (type, tenant, group_id, payload, dedupe_key, ordering_key, status, attempts,
      max_attempts, run_at, created_at, updated_at) VALUES `);
  const INSERT_JOBS_WITH_ID = raw(`INSERT INTO maestrano_jobs (id, type, tenant, group_id, payload, dedupe_key, ordering_key, status,
      attempts, max_attempts, run_at, created_at, updated_at) VALUES `);

  async function enqueueOne(job: JobInput, operation: StorageOperation = 'jobs.enqueue'): Promise<EnqueueResult> {
    for (let attempt = 0; attempt < RACE_RETRIES; attempt++) {
      await raceBackoff(attempt);
      const [row] = await db.query(
        operation,
        sql`${INSERT_JOBS}${jobValues(job, ctx.now())} ON CONFLICT (dedupe_key) DO NOTHING RETURNING id`,
      );
      if (row) return { id: str(row, 'id'), created: true };
      const [existing] = await db.query(operation, sql`SELECT id FROM maestrano_jobs WHERE dedupe_key = ${job.dedupeKey ?? null}`);
      if (existing) return { id: str(existing, 'id'), created: false };
    }
    throw raceLost(operation);
  }

  /**
   * Stores a batch with one multi-row INSERT (all rows or none). Ids ascend in input order;
   * inputs whose dedupe key was already stored (or repeats an earlier input of the batch)
   * get the existing job's id.
   *
   * On PostgreSQL each inserted row locks its dedupe key until the statement commits, and a
   * row whose key another uncommitted batch holds waits for it: two batches taking
   * overlapping keys in different orders would deadlock. So rows are inserted in dedupe-key
   * order (as `locks.acquireMany` sorts its keys), with ids drawn from the sequence first and
   * handed out in input order, which keeps the claim order (`run_at, created_at, id`) of a
   * batch its input order. SQLite takes one write lock for the whole statement: no deadlock.
   */
  async function enqueueBatch(jobs: JobInput[]): Promise<EnqueueResult[]> {
    const now = ctx.now();
    const results: (EnqueueResult | null)[] = pg ? await insertBatchPostgres(jobs, now) : await insertBatchSqlite(jobs, now);
    const missing = jobs.filter((_, index) => results[index] === null);
    if (missing.length > 0) {
      const keys = missing.map((job) => job.dedupeKey ?? '');
      const stored = await db.query(
        'jobs.enqueueMany',
        sql`SELECT id, dedupe_key FROM maestrano_jobs WHERE ${inList(raw('dedupe_key'), keys, db.provider)}`,
      );
      const byKey = new Map(stored.map((row) => [str(row, 'dedupe_key'), str(row, 'id')]));
      for (let index = 0; index < jobs.length; index++) {
        if (results[index] !== null) continue;
        const job = jobs[index];
        const id = byKey.get(job?.dedupeKey ?? '');
        // Purged between the insert and this lookup: store it on its own.
        results[index] = id !== undefined ? { id, created: false } : job ? await enqueueOne(job, 'jobs.enqueueMany') : null;
      }
    }
    return results.map((result) => {
      if (result === null) throw raceLost('jobs.enqueueMany');
      return result;
    });
  }

  /** The batch's results so far: null for an input whose dedupe key was stored before the batch. */
  async function insertBatchPostgres(jobs: JobInput[], now: Date): Promise<(EnqueueResult | null)[]> {
    const allocated = await db.query(
      'jobs.enqueueMany',
      sql`SELECT nextval(pg_get_serial_sequence('maestrano_jobs', 'id'))::text AS id FROM generate_series(1, ${bigint(String(jobs.length))})`,
    );
    const ids = allocated.map((row) => BigInt(str(row, 'id'))).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (ids.length !== jobs.length) throw new Error('nextval returned fewer ids than asked for');
    // Stable sort: of several inputs with one dedupe key, the first in input order is stored.
    // Inputs without a key lock nothing and go last.
    const order = jobs
      .map((_, index) => index)
      .sort((a, b) => compareDedupeKeys(jobs[a]?.dedupeKey ?? null, jobs[b]?.dedupeKey ?? null));
    const inserted = await db.query(
      'jobs.enqueueMany',
      sql`${INSERT_JOBS_WITH_ID}${join(
        order.map((index) => jobValues(jobs[index] as JobInput, now, ids[index] as bigint)),
        ', ',
      )} ON CONFLICT (dedupe_key) DO NOTHING RETURNING id`,
    );
    const created = new Set(inserted.map((row) => str(row, 'id')));
    const results: (EnqueueResult | null)[] = [];
    const inBatch = new Map<string, string>();
    jobs.forEach((job, index) => {
      const id = String(ids[index]);
      const dedupeKey = job.dedupeKey ?? null;
      if (created.has(id)) {
        if (dedupeKey !== null) inBatch.set(dedupeKey, id);
        results.push({ id, created: true });
      } else {
        const first = dedupeKey === null ? undefined : inBatch.get(dedupeKey);
        results.push(first !== undefined ? { id: first, created: false } : null);
      }
    });
    return results;
  }

  /** As `insertBatchPostgres`; rows come back with ascending ids in input order. */
  async function insertBatchSqlite(jobs: JobInput[], now: Date): Promise<(EnqueueResult | null)[]> {
    const inserted = await db.query(
      'jobs.enqueueMany',
      sql`${INSERT_JOBS}${join(
        jobs.map((job) => jobValues(job, now)),
        ', ',
      )} ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key`,
    );
    const rows = inserted
      .map((row) => ({ id: str(row, 'id'), dedupeKey: optStr(row, 'dedupe_key') }))
      .sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
    const results: (EnqueueResult | null)[] = [];
    const inBatch = new Map<string, string>();
    let next = 0;
    for (const job of jobs) {
      const dedupeKey = job.dedupeKey ?? null;
      const candidate = rows[next];
      if (dedupeKey !== null && inBatch.has(dedupeKey)) {
        results.push({ id: inBatch.get(dedupeKey) ?? '', created: false });
      } else if (candidate !== undefined && candidate.dedupeKey === dedupeKey) {
        next++;
        if (dedupeKey !== null) inBatch.set(dedupeKey, candidate.id);
        results.push({ id: candidate.id, created: true });
      } else {
        results.push(null); // dedupe key already stored before this batch
      }
    }
    return results;
  }

  /**
   * Not held back by another job of its ordering key: none running with a live lease, and
   * none older still unfinished (a pending one parked on a wait key does not count until it is
   * due again: then it is the key's head, and never claimed beside a younger one).
   */
  const orderingFree = (now: Date): Sql =>
    sql`(j.ordering_key IS NULL OR NOT EXISTS (
              SELECT 1 FROM maestrano_jobs o
              WHERE o.ordering_key = j.ordering_key AND o.id <> j.id
                AND ((o.status = 'running' AND o.lease_expires_at > ${ts(now)})
                  OR ((o.status = 'running' OR (o.status = 'pending' AND (o.wait_key IS NULL OR o.run_at <= ${ts(now)})))
                    AND (o.created_at < j.created_at OR (o.created_at = j.created_at AND o.id < j.id))))))`;

  /**
   * SQLite's condition for extending the lease of the owned job (the row being updated): no
   * other job of its ordering key holds a live lease. Once the job's own lease lapsed, an older
   * job of the key (a requeued dead letter) may have been claimed; extending the lapsed lease
   * then would run two jobs of the key at once. (PostgreSQL also takes the key's guard row: see
   * `heartbeatPostgres`.)
   */
  const keyNotHeldByOther = (now: Date): Sql =>
    sql`(ordering_key IS NULL OR NOT EXISTS (
              SELECT 1 FROM maestrano_jobs o
              WHERE o.ordering_key = maestrano_jobs.ordering_key AND o.id <> maestrano_jobs.id
                AND o.status = 'running' AND o.lease_expires_at > ${ts(now)}))`;

  /**
   * SQLite's extra condition for a batch renewal (the row being updated): one statement's rows
   * do not see each other's new leases, so of the batch's owned jobs of one ordering key whose
   * leases all lapsed, only the oldest takes the key back (as on PostgreSQL); otherwise a worker
   * owning two lapsed jobs of one key would get two live leases. A job still holding a live
   * lease is the key's only holder and is renewed as usual.
   */
  const oldestOfBatch = (batch: readonly string[], worker: string, now: Date): Sql =>
    sql`(ordering_key IS NULL OR lease_expires_at > ${ts(now)} OR NOT EXISTS (
              SELECT 1 FROM maestrano_jobs m
              WHERE ${inBigintList(raw('m.id'), batch, db.provider)} AND m.ordering_key = maestrano_jobs.ordering_key
                AND m.id <> maestrano_jobs.id AND m.status = 'running' AND m.lease_owner = ${worker}
                AND (m.created_at < maestrano_jobs.created_at OR (m.created_at = maestrano_jobs.created_at AND m.id < maestrano_jobs.id))))`;

  /**
   * When an upsert of an ordering key's guard row (`g`, the latest committed one) may give it to
   * the inserted job: the guard is the job's own, or has lapsed, or was left behind by a job that
   * is done (a heartbeat that re-created the guard while the job's completion waited for it:
   * the completion's statement could not see the new guard to delete it). `done` is final, so
   * such a guard never holds a job that could still run.
   */
  const guardTakeable = (now: Date): Sql =>
    sql`g.job_id = excluded.job_id OR g.lease_expires_at <= ${ts(now)}
            OR EXISTS (SELECT 1 FROM maestrano_jobs d WHERE d.id = g.job_id AND d.status = 'done')`;

  /**
   * The jobs `j` a claim may take: due (pending and `runAt` passed, or running with an
   * expired lease) and free of their ordering key.
   */
  const claimable = (now: Date, types: Sql): Sql =>
    sql`((j.status = 'pending' AND j.run_at <= ${ts(now)}) OR (j.status = 'running' AND j.lease_expires_at <= ${ts(now)}))${types}
            AND ${orderingFree(now)}`;

  const claimPostgres = (options: ClaimJobsOptions, now: Date, expires: Date, types: Sql): Sql =>
    // Candidates are locked with SKIP LOCKED, so concurrent claimers never take the same
    // row. The ordering-key filter reads a snapshot, which alone cannot stop two claimers
    // from picking two different jobs of one key; the guard row per key (taken with an
    // upsert that re-checks the latest committed row) makes that impossible.
    // Pending and lease-expired jobs are two separate, index-ordered scans that stop at the
    // limit: one scan over an OR of both states had to read (and sort) the whole backlog on
    // every claim, about a second per claim with 50,000 jobs waiting.
    sql`WITH due AS (
          SELECT j.id, j.ordering_key, j.run_at, j.created_at FROM maestrano_jobs j
          WHERE j.status = 'pending' AND j.run_at <= ${ts(now)}${types} AND ${orderingFree(now)}
          ORDER BY j.run_at, j.created_at, j.id
          LIMIT ${options.limit}
          FOR UPDATE OF j SKIP LOCKED
        ), expired AS (
          SELECT j.id, j.ordering_key, j.run_at, j.created_at FROM maestrano_jobs j
          WHERE j.status = 'running' AND j.lease_expires_at <= ${ts(now)}${types} AND ${orderingFree(now)}
          ORDER BY j.run_at, j.created_at, j.id
          LIMIT ${options.limit}
          FOR UPDATE OF j SKIP LOCKED
        ), cand AS (
          SELECT id, ordering_key FROM (SELECT * FROM due UNION ALL SELECT * FROM expired) c
          ORDER BY run_at, created_at, id
          LIMIT ${options.limit}
        ), guard AS (
          INSERT INTO maestrano_job_guards AS g (ordering_key, job_id, lease_expires_at)
          SELECT ordering_key, id, ${ts(expires)} FROM cand WHERE ordering_key IS NOT NULL
          ON CONFLICT (ordering_key) DO UPDATE SET job_id = excluded.job_id, lease_expires_at = excluded.lease_expires_at
            WHERE ${guardTakeable(now)}
          RETURNING g.job_id
        )
        UPDATE maestrano_jobs j SET status = 'running', lease_owner = ${options.worker}, lease_expires_at = ${ts(expires)},
          attempts = j.attempts + 1, updated_at = ${ts(now)}
        WHERE j.id IN (SELECT id FROM cand WHERE ordering_key IS NULL UNION ALL SELECT job_id FROM guard)
        RETURNING ${J_COLUMNS}`;

  const claimSqlite = (options: ClaimJobsOptions, now: Date, expires: Date, types: Sql): Sql =>
    // One UPDATE statement: SQLite runs it under the database write lock, so selection and
    // update see no concurrent writer.
    sql`UPDATE maestrano_jobs SET status = 'running', lease_owner = ${options.worker}, lease_expires_at = ${ts(expires)},
          attempts = attempts + 1, updated_at = ${ts(now)}
        WHERE id IN (
          SELECT j.id FROM maestrano_jobs j
          WHERE ${claimable(now, types)}
          ORDER BY j.run_at, j.created_at, j.id
          LIMIT ${options.limit})
        RETURNING ${COLUMNS}`;

  /**
   * Applies `set` to the owned running jobs matched by `ids` (an id condition); on
   * PostgreSQL also releases their ordering guards. Returns each changed job's id and status.
   */
  function ownedJobsUpdate(set: Sql, ids: Sql, worker: string): Sql {
    const where = sql`${ids} AND status = 'running' AND lease_owner = ${worker}`;
    if (!pg) return sql`UPDATE maestrano_jobs SET ${set} WHERE ${where} RETURNING id, status`;
    return sql`WITH j AS (UPDATE maestrano_jobs SET ${set} WHERE ${where} RETURNING id, ordering_key, status),
                    released AS (DELETE FROM maestrano_job_guards g USING j WHERE g.ordering_key = j.ordering_key AND g.job_id = j.id)
               SELECT id, status FROM j`;
  }

  /**
   * PostgreSQL's lease renewal of the jobs matched by `ids` (an id condition) that `worker` owns
   * and that are still running, ending with `select` over `j` (the renewed ids). As on SQLite,
   * a job keeps its lease unless another job of its ordering key holds a live one; the key's
   * guard row says so under concurrency:
   * - The job rows are locked first (in id order), so a completion, failure or release of the
   *   same job either ran before (the job is no longer running and owned: nothing is renewed,
   *   no guard is written) or waits for this statement.
   * - A job with an ordering key takes the key's guard with an upsert, which re-checks the
   *   latest committed guard: it extends its own guard, re-creates a missing one (the job's
   *   lease lapsed meanwhile and another job of the key ran and finished) or takes over a
   *   lapsed one (`guardTakeable`), but never replaces the live guard of another job (whose
   *   claim has moved the key's turn on). It also skips a key another job holds a live lease
   *   of. One job per key takes part (one upsert cannot touch a guard twice).
   * - A job's lease is extended only with its guard.
   */
  function heartbeatPostgres(ids: Sql, worker: string, now: Date, expires: Date, select: Sql): Sql {
    return sql`WITH mine AS (
          SELECT id, ordering_key, created_at FROM maestrano_jobs
          WHERE ${ids} AND status = 'running' AND lease_owner = ${worker}
          ORDER BY id
          FOR UPDATE
        ), turn AS (
          SELECT DISTINCT ON (m.ordering_key) m.ordering_key, m.id FROM mine m
          WHERE m.ordering_key IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM maestrano_jobs o
            WHERE o.ordering_key = m.ordering_key AND o.id <> m.id AND o.status = 'running' AND o.lease_expires_at > ${ts(now)})
          ORDER BY m.ordering_key, m.created_at, m.id
        ), g AS (
          INSERT INTO maestrano_job_guards AS g (ordering_key, job_id, lease_expires_at)
          SELECT ordering_key, id, ${ts(expires)} FROM turn
          ORDER BY ordering_key
          ON CONFLICT (ordering_key) DO UPDATE SET job_id = excluded.job_id, lease_expires_at = excluded.lease_expires_at
            WHERE ${guardTakeable(now)}
          RETURNING g.job_id
        ), j AS (
          UPDATE maestrano_jobs SET lease_expires_at = ${ts(expires)}, updated_at = ${ts(now)}
          WHERE id IN (SELECT id FROM mine WHERE ordering_key IS NULL UNION ALL SELECT job_id FROM g)
          RETURNING id
        )
        ${select}`;
  }

  /**
   * PostgreSQL, after a failure or release of job `id` was recorded: deletes a guard of the job
   * that the recording statement could not see. A heartbeat of the job that held its row while
   * that statement waited may have inserted the key's guard after the statement's snapshot; the
   * guard then held the record's next job back for a whole lease (a dead letter's for good until
   * it lapsed). The job row is locked first, so a claim of the job committed meanwhile (its own
   * guard, the job running again) is seen and kept.
   */
  async function dropUnseenGuard(operation: StorageOperation, id: string): Promise<void> {
    if (!pg) return;
    // Best effort: the change is recorded already, so a failure here must not make the call
    // reject (the caller would take it for not recorded); such a guard lapses with its lease.
    await db.execute(
      operation,
      sql`WITH x AS (SELECT id, ordering_key FROM maestrano_jobs WHERE id = ${bigint(id)} AND ordering_key IS NOT NULL AND status <> 'running' FOR UPDATE)
          DELETE FROM maestrano_job_guards g USING x WHERE g.ordering_key = x.ordering_key AND g.job_id = x.id`,
    ).catch(() => 0);
  }

  /** What `release` sets: pending and due at `at`, the claim's attempt not counted, no lease. */
  function releasedAt(at: Date): Sql {
    return sql`status = 'pending', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, run_at = ${ts(at)},
      lease_owner = NULL, lease_expires_at = NULL, updated_at = ${ts(at)}`;
  }

  /** `ownedJobsUpdate` for one job. */
  function ownedJobUpdate(set: Sql, id: string, worker: string): Sql {
    return ownedJobsUpdate(set, sql`id = ${bigint(id)}`, worker);
  }

  const completeSet = (now: Date): Sql =>
    sql`status = 'done', completed_at = ${ts(now)}, lease_owner = NULL, lease_expires_at = NULL, updated_at = ${ts(now)}`;

  const wakeSet = (now: Date): Sql =>
    sql`run_at = CASE WHEN run_at > ${ts(now)} THEN ${ts(now)} ELSE run_at END, wait_key = NULL, updated_at = ${ts(now)}`;

  return {
    async enqueue(job: JobInput): Promise<EnqueueResult> {
      validate('jobs.enqueue', job);
      return enqueueOne(job);
    },

    async enqueueMany(jobs: JobInput[]): Promise<EnqueueResult[]> {
      // Everything is validated first, so a bad entry stores nothing.
      for (const job of jobs) validate('jobs.enqueueMany', job);
      const results: EnqueueResult[] = [];
      // One statement per chunk (SQLite binds at most 32766 parameters); a batch within
      // one chunk is stored atomically.
      for (let i = 0; i < jobs.length; i += ENQUEUE_CHUNK) results.push(...(await enqueueBatch(jobs.slice(i, i + ENQUEUE_CHUNK))));
      return results;
    },

    async claim(options: ClaimJobsOptions): Promise<JobRecord[]> {
      nonEmpty('jobs.claim', 'worker', options.worker);
      positiveInt('jobs.claim', 'limit', options.limit);
      positiveInt('jobs.claim', 'leaseMs', options.leaseMs);
      if (Array.isArray(options.types)) for (const type of options.types) storableText('jobs.claim', 'type', type);
      if (options.types !== undefined && options.types.length === 0) return [];
      const now = ctx.now();
      const expires = plus(now, options.leaseMs);
      const types = options.types === undefined ? raw('') : sql` AND ${inList(raw('j.type'), options.types, db.provider)}`;
      const query = pg ? claimPostgres(options, now, expires, types) : claimSqlite(options, now, expires, types);
      // A claim that outlived `operationTimeoutMs` still runs, and may commit after the caller
      // was told it failed: the jobs it leased are given back (as `release` does: due now, the
      // attempt not counted), not left leased to a worker that never received them. Only while
      // the lease is the one this claim set (the same worker may have claimed them again since).
      const giveBack = (rows: Row[]): void => {
        const ids = rows.map((row) => str(row, 'id'));
        if (ids.length === 0) return;
        const at = ctx.now();
        db.query(
          'jobs.claim',
          ownedJobsUpdate(
            releasedAt(at),
            sql`${inBigintList(raw('id'), ids, db.provider)} AND lease_expires_at = ${ts(expires)}`,
            options.worker,
          ),
        ).catch(() => {}); // best effort: otherwise the leases expire and the jobs are redelivered
      };
      const claimed = await db.query('jobs.claim', query, giveBack);
      // The claim has committed: every row is leased and its attempt counted. A row whose
      // payload cannot be read is dead-lettered with the reason here, not handed to a handler
      // and not allowed to fail the claim (which would lease the jobs claimed with it, over and
      // over, without ever running or dead-lettering them).
      const jobs: JobRecord[] = [];
      for (const row of claimed) {
        const payload = readPayload(row);
        if (payload.ok) {
          jobs.push(toJob(row, payload));
          continue;
        }
        const error: JsonObject = { code: 'unreadable_payload', message: wellFormedText(`The job's stored payload cannot be read: ${payload.reason}`) };
        // Nor may a failure to record it fail the claim: the jobs claimed with it would stay
        // leased to a worker told it got none. This one's lease expires and a later claim
        // dead-letters it.
        await db
          .query(
            'jobs.claim',
            ownedJobUpdate(
              sql`status = 'dead', lease_owner = NULL, lease_expires_at = NULL, last_error = ${json(error, true)}, updated_at = ${ts(now)}`,
              str(row, 'id'),
              options.worker,
            ),
          )
          .catch(() => []);
      }
      return jobs.sort(byDueOrder);
    },

    async heartbeat(id: string, worker: string, leaseMs: number): Promise<boolean> {
      positiveInt('jobs.heartbeat', 'leaseMs', leaseMs);
      storableText('jobs.heartbeat', 'worker', worker);
      const key = jobId(id);
      if (key === null) return false;
      const now = ctx.now();
      const expires = plus(now, leaseMs);
      if (!pg) {
        const changed = await db.execute(
          'jobs.heartbeat',
          sql`UPDATE maestrano_jobs SET lease_expires_at = ${ts(expires)}, updated_at = ${ts(now)}
              WHERE id = ${bigint(key)} AND status = 'running' AND lease_owner = ${worker} AND ${keyNotHeldByOther(now)}`,
        );
        return changed > 0;
      }
      const [row] = await db.query(
        'jobs.heartbeat',
        heartbeatPostgres(sql`id = ${bigint(key)}`, worker, now, expires, sql`SELECT COUNT(*) AS n FROM j`),
      );
      return row !== undefined && num(row, 'n') > 0;
    },

    async heartbeatMany(ids: string[], worker: string, leaseMs: number): Promise<string[]> {
      const op = 'jobs.heartbeatMany';
      if (!Array.isArray(ids)) throw invalid(op, 'ids must be an array');
      positiveInt(op, 'leaseMs', leaseMs);
      storableText(op, 'worker', worker);
      // Malformed ids name no job; the rest, without duplicates, in the caller's order.
      const keys = [...new Set(ids.filter((id) => typeof id === 'string' && jobId(id) !== null))];
      const alive = new Set<string>();
      for (const batch of chunks(keys, KEY_BATCH)) {
        const now = ctx.now();
        const expires = plus(now, leaseMs);
        const ids = inBigintList(raw('id'), batch, db.provider);
        const rows = await db.query(
          op,
          pg
            ? heartbeatPostgres(ids, worker, now, expires, sql`SELECT id FROM j`)
            : sql`UPDATE maestrano_jobs SET lease_expires_at = ${ts(expires)}, updated_at = ${ts(now)}
                  WHERE ${ids} AND status = 'running' AND lease_owner = ${worker} AND ${keyNotHeldByOther(now)}
                    AND ${oldestOfBatch(batch, worker, now)} RETURNING id`,
        );
        for (const row of rows) alive.add(str(row, 'id'));
      }
      return keys.filter((key) => alive.has(key));
    },

    async complete(id: string, worker: string): Promise<boolean> {
      storableText('jobs.complete', 'worker', worker);
      const key = jobId(id);
      if (key === null) return false;
      const done = await db.query('jobs.complete', ownedJobUpdate(completeSet(ctx.now()), key, worker));
      return done.length > 0;
    },

    async completeMany(ids: string[], worker: string): Promise<string[]> {
      const op = 'jobs.completeMany';
      if (!Array.isArray(ids)) throw invalid(op, 'ids must be an array');
      storableText(op, 'worker', worker);
      // Malformed ids name no job; the rest, without duplicates, in the caller's order.
      const keys = [...new Set(ids.filter((id) => typeof id === 'string' && jobId(id) !== null))];
      const done = new Set<string>();
      for (const batch of chunks(keys, KEY_BATCH)) {
        const rows = await db.query(op, ownedJobsUpdate(completeSet(ctx.now()), inBigintList(raw('id'), batch, db.provider), worker));
        for (const row of rows) done.add(str(row, 'id'));
      }
      return keys.filter((key) => done.has(key));
    },

    async fail(id: string, worker: string, failure: { error: JobError; retryAt: Date; waitKey?: string | null; final?: boolean }): Promise<FailOutcome> {
      validDate('jobs.fail', 'retryAt', failure.retryAt);
      if (typeof failure.error?.message !== 'string') throw invalid('jobs.fail', 'failure.error.message must be a string');
      storableText('jobs.fail', 'waitKey', failure.waitKey);
      storableText('jobs.fail', 'worker', worker);
      const key = jobId(id);
      if (key === null) return 'lost';
      const now = ctx.now();
      const error: JsonObject = { message: wellFormedText(failure.error.message) };
      if (failure.error.code !== undefined) error.code = typeof failure.error.code === 'string' ? wellFormedText(failure.error.code) : failure.error.code;
      // A final failure (no retry can fix it) is a dead letter whatever its attempts.
      const dead = failure.final === true ? raw('TRUE') : raw('attempts >= max_attempts');
      const [row] = await db.query(
        'jobs.fail',
        ownedJobUpdate(
          sql`status = CASE WHEN ${dead} THEN 'dead' ELSE 'pending' END,
              run_at = CASE WHEN ${dead} THEN run_at ELSE ${ts(failure.retryAt)} END,
              wait_key = CASE WHEN ${dead} THEN wait_key ELSE ${text(failure.waitKey ?? null)} END,
              lease_owner = NULL, lease_expires_at = NULL, last_error = ${json(error, true)}, updated_at = ${ts(now)}`,
          key,
          worker,
        ),
      );
      if (!row) return 'lost';
      await dropUnseenGuard('jobs.fail', key);
      return str(row, 'status') === 'dead' ? 'dead' : 'retrying';
    },

    async release(id: string, worker: string): Promise<boolean> {
      storableText('jobs.release', 'worker', worker);
      const key = jobId(id);
      if (key === null) return false;
      const now = ctx.now();
      const [row] = await db.query(
        'jobs.release',
        ownedJobUpdate(
          releasedAt(now),
          key,
          worker,
        ),
      );
      if (row !== undefined) await dropUnseenGuard('jobs.release', key);
      return row !== undefined;
    },

    async wake(waitKey: string): Promise<number> {
      nonEmpty('jobs.wake', 'waitKey', waitKey);
      return db.execute(
        'jobs.wake',
        sql`UPDATE maestrano_jobs SET ${wakeSet(ctx.now())} WHERE status = 'pending' AND wait_key = ${waitKey}`,
      );
    },

    async wakeMany(waitKeys: string[]): Promise<number> {
      const op = 'jobs.wakeMany';
      if (!Array.isArray(waitKeys)) throw invalid(op, 'waitKeys must be an array');
      for (const waitKey of waitKeys) nonEmpty(op, 'waitKey', waitKey);
      let woken = 0;
      for (const batch of chunks([...new Set(waitKeys)], KEY_BATCH)) {
        woken += await db.execute(
          op,
          sql`UPDATE maestrano_jobs SET ${wakeSet(ctx.now())}
              WHERE status = 'pending' AND ${inList(raw('wait_key'), batch, db.provider)}`,
        );
      }
      return woken;
    },

    async get(id: string): Promise<JobRecord | null> {
      const key = jobId(id);
      if (key === null) return null;
      const [row] = await db.query('jobs.get', sql`SELECT ${COLUMNS} FROM maestrano_jobs WHERE id = ${bigint(key)}`);
      return row ? toJob(row) : null;
    },

    async listDead(filter?: { tenant?: string; type?: string; groupId?: string; limit?: number; newestFirst?: boolean }): Promise<JobRecord[]> {
      storableLookup('jobs.listDead', { tenant: filter?.tenant, type: filter?.type, groupId: filter?.groupId });
      const conditions: Sql[] = [raw(`status = 'dead'`)];
      if (filter?.tenant !== undefined) conditions.push(sql`tenant = ${filter.tenant}`);
      if (filter?.type !== undefined) conditions.push(sql`type = ${filter.type}`);
      if (filter?.groupId !== undefined) conditions.push(sql`group_id = ${filter.groupId}`);
      if (filter?.limit !== undefined) positiveInt('jobs.listDead', 'limit', filter.limit);
      const limit = filter?.limit === undefined ? raw('') : sql` LIMIT ${filter.limit}`;
      const found = await db.query(
        'jobs.listDead',
        sql`SELECT ${COLUMNS} FROM maestrano_jobs WHERE ${join(conditions, ' AND ')} ORDER BY ${filter?.newestFirst ? raw('updated_at DESC, created_at DESC, id DESC') : raw('created_at, id')}${limit}`,
      );
      return found.map((row) => toJob(row));
    },

    async requeue(id: string): Promise<boolean> {
      const key = jobId(id);
      if (key === null) return false;
      const now = ctx.now();
      const changed = await db.execute(
        'jobs.requeue',
        sql`UPDATE maestrano_jobs SET status = 'pending', attempts = 0, run_at = ${ts(now)}, lease_owner = NULL, lease_expires_at = NULL,
              wait_key = NULL, completed_at = NULL, last_error = NULL, updated_at = ${ts(now)}
            WHERE id = ${bigint(key)} AND status = 'dead'`,
      );
      return changed > 0;
    },

    async discard(id: string): Promise<boolean> {
      const key = jobId(id);
      if (key === null) return false;
      // One conditional statement: a job requeued or claimed first is no longer dead, and stays.
      const deleted = await db.execute('jobs.discard', sql`DELETE FROM maestrano_jobs WHERE id = ${bigint(key)} AND status = 'dead'`);
      return deleted > 0;
    },

    async counts(filter?: { tenant?: string; type?: string }): Promise<Record<JobStatus, number>> {
      storableLookup('jobs.counts', { tenant: filter?.tenant, type: filter?.type });
      const conditions: Sql[] = [raw('1 = 1')];
      if (filter?.tenant !== undefined) conditions.push(sql`tenant = ${filter.tenant}`);
      if (filter?.type !== undefined) conditions.push(sql`type = ${filter.type}`);
      const found = await db.query(
        'jobs.counts',
        sql`SELECT status, COUNT(*) AS n FROM maestrano_jobs WHERE ${join(conditions, ' AND ')} GROUP BY status`,
      );
      const counts: Record<JobStatus, number> = { pending: 0, running: 0, done: 0, dead: 0 };
      for (const row of found) {
        const status = str(row, 'status');
        const known = STATUSES.find((candidate) => candidate === status);
        if (known) counts[known] = num(row, 'n');
      }
      return counts;
    },

    async purgeCompleted(before: Date, options?: { signal?: AbortSignal }): Promise<number> {
      validDate('jobs.purgeCompleted', 'before', before);
      // In bounded statements, the event loop (and the other writers) running in between.
      const batch = pg ? PURGE_BATCH.postgresql : PURGE_BATCH.sqlite;
      let removed = 0;
      for (;;) {
        const deleted = await db.execute(
          'jobs.purgeCompleted',
          sql`DELETE FROM maestrano_jobs WHERE id IN (
                SELECT id FROM maestrano_jobs WHERE status = 'done' AND completed_at < ${ts(before)} LIMIT ${batch})`,
        );
        removed += deleted;
        if (deleted < batch) return removed;
        await new Promise((resolve) => setImmediate(resolve));
        // The worker's shutdown stopped waiting: no statement after it (the app may be closing
        // the client, which Prisma would reconnect for the next one).
        if (options?.signal?.aborted) return removed;
      }
    },
  };
}
