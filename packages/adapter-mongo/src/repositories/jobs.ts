import { type Filter, ObjectId } from 'mongodb';
import type {
  ClaimJobsOptions,
  EnqueueResult,
  FailOutcome,
  JobError,
  JobInput,
  JobRecord,
  JobRepository,
  JobStatus,
  JsonValue,
} from '@org/maestrano-sdk';
import { mapLimited, settleAll } from '../batch.js';
import {
  date,
  dateOrNull,
  idString,
  jobErrorOrNull,
  json,
  num,
  parseObjectId,
  type Raw,
  type Stored,
  str,
  strOrNull,
  toDate,
  MAX_ERROR_CODE_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  recordedText,
  toStoredJson,
  uniqueSlot,
  valueSlot,
} from '../documents.js';
import { isDuplicateKeyError, storageError } from '../errors.js';
import { conflictBackoff, type Store } from '../store.js';
import { checkArray, checkDate, checkLookup, checkNonEmpty, checkPositiveInt, checkStorableText, expiryAfter, InvalidArgumentError } from '../validation.js';

const STATUSES: JobStatus[] = ['pending', 'running', 'done', 'dead'];

function status(value: string): JobStatus {
  return STATUSES.find((s) => s === value) ?? 'pending';
}

/**
 * A stored job. `readable: true` (reads: `get`, `listDead`) reads an unreadable payload as null
 * (its dead letter's `lastError` says why); a claim decodes strictly and dead-letters the job.
 */
export function decodeJob(doc: Raw, options: { readable?: boolean } = {}): JobRecord {
  let payload: JsonValue;
  try {
    payload = json(doc, 'payload');
  } catch (error) {
    if (!options.readable) throw error;
    payload = null;
  }
  const lenient = <T>(read: () => T, fallback: T): T => {
    try {
      return read();
    } catch (error) {
      if (!options.readable) throw error;
      return fallback;
    }
  };
  return {
    id: idString(doc['_id']),
    type: lenient(() => str(doc, 'type'), ''),
    tenant: strOrNull(doc, 'tenant'),
    groupId: strOrNull(doc, 'groupId'),
    payload,
    dedupeKey: strOrNull(doc, 'dedupeKey'),
    orderingKey: lenient(() => strOrNull(doc, 'orderingKey'), null),
    waitKey: strOrNull(doc, 'waitKey'),
    status: status(str(doc, 'status')),
    attempts: num(doc, 'attempts'),
    maxAttempts: num(doc, 'maxAttempts'),
    runAt: date(doc, 'runAt'),
    leaseOwner: strOrNull(doc, 'leaseOwner'),
    leaseExpiresAt: dateOrNull(doc, 'leaseExpiresAt'),
    lastError: jobErrorOrNull(doc, 'lastError'),
    createdAt: date(doc, 'createdAt'),
    updatedAt: date(doc, 'updatedAt'),
    completedAt: dateOrNull(doc, 'completedAt'),
  };
}

/** A job's recorded error: well-formed text, cut to `MAX_ERROR_MESSAGE_BYTES` / `MAX_ERROR_CODE_BYTES` (ending `…`). */
function storedError(error: JobError): Raw {
  const message = recordedText(error.message, MAX_ERROR_MESSAGE_BYTES);
  return error.code === undefined
    ? { message }
    : { message, code: typeof error.code === 'string' ? recordedText(error.code, MAX_ERROR_CODE_BYTES) : error.code };
}

/** Most due jobs one read of a claim returns (each further read of the same claim doubles, up to this). */
const MAX_CANDIDATES = 512;
/** Compare-and-set attempts of an owner's transition (heartbeat, complete, fail) before it gives up. */
const TRANSITION_ATTEMPTS = 10;

/** The fields a claim reads to decide an ordering key. */
const HEAD_FIELDS = { _id: 1, orderingKey: 1, type: 1, status: 1, runAt: 1, leaseExpiresAt: 1, createdAt: 1, waitKey: 1 };
/** The fields a claim reads of a key's other unfinished jobs to decide whether they hold a head back (`blockedAmong`). */
const BLOCKER_FIELDS = { _id: 1, orderingKey: 1, status: 1, runAt: 1, leaseExpiresAt: 1, createdAt: 1, waitKey: 1 };

/** Whether a claim may take `doc` at `now`: pending with `runAt` passed, or running with an expired lease. */
function isDue(doc: Raw, now: Date): boolean {
  if (doc['status'] === 'pending') return date(doc, 'runAt').getTime() <= now.getTime();
  const lease = dateOrNull(doc, 'leaseExpiresAt');
  return doc['status'] === 'running' && lease !== null && lease.getTime() <= now.getTime();
}

/** Whether `doc` runs with a live lease at `now`. */
function isLive(doc: Raw, now: Date): boolean {
  const lease = dateOrNull(doc, 'leaseExpiresAt');
  return doc['status'] === 'running' && lease !== null && lease.getTime() > now.getTime();
}

/** `_id` order (same-length hex strings, so text order is byte order). */
function byId(a: Raw, b: Raw): number {
  const [x, y] = [idString(a['_id']), idString(b['_id'])];
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Creation order: `createdAt`, then `_id`. */
function byCreation(a: Raw, b: Raw): number {
  return date(a, 'createdAt').getTime() - date(b, 'createdAt').getTime() || byId(a, b);
}

/** The claim's order: `runAt`, then creation order. */
function dueOrder(a: Raw, b: Raw): number {
  return date(a, 'runAt').getTime() - date(b, 'runAt').getTime() || byCreation(a, b);
}

/**
 * The durable inbox. One document per job (ObjectId `_id`, `dedupeSlot` = the never-null
 * unique slot of `dedupeKey`). Every state change is a compare-and-set on the job's
 * revision, so a job is held by at most one worker.
 *
 * Ordering keys: jobs sharing an `orderingKey` are claimed through a per-key guard document
 * (`_id` = the key) holding the running job (`jobId`, and `jobRev`, the revision its claim
 * read), its worker and a lease equal to the job's lease. A worker first takes the guard
 * (insert, or compare-and-set when its lease expired or its job no longer runs under it, see
 * `holdsKey`), then, while it
 * holds it, checks that no other job of the key runs with a live lease and no older job of
 * the key is pending/running, and only then claims the job. Completion, failure and
 * heartbeats keep the guard in step.
 */
export function jobRepository(store: Store): JobRepository {
  const jobs = () => store.collection('jobs');

  /** Checks a job and returns its payload's stored form (before any write). */
  function checkInput(job: JobInput): unknown {
    checkNonEmpty('type', job.type);
    checkPositiveInt('maxAttempts', job.maxAttempts ?? 8);
    if (job.runAt !== undefined) checkDate('runAt', job.runAt);
    if (job.payload === undefined) throw new InvalidArgumentError('payload is required (use null for none)');
    if (job.dedupeKey !== undefined && job.dedupeKey !== null) checkNonEmpty('dedupeKey', job.dedupeKey);
    checkStorableText('tenant', job.tenant);
    checkStorableText('groupId', job.groupId);
    checkStorableText('orderingKey', job.orderingKey);
    return toStoredJson(job.payload, 'payload');
  }

  async function enqueueOne(job: JobInput, payload: unknown): Promise<EnqueueResult> {
    const dedupeKey = job.dedupeKey ?? null;
    for (let attempt = 0; attempt < 5; attempt++) {
      const id = new ObjectId();
      const now = store.now();
      const doc: Raw & { _id: ObjectId } = {
        _id: id,
        type: job.type,
        tenant: job.tenant ?? null,
        groupId: job.groupId ?? null,
        payload,
        dedupeKey,
        orderingKey: job.orderingKey ?? null,
        waitKey: null,
        status: 'pending',
        attempts: 0,
        maxAttempts: job.maxAttempts ?? 8,
        runAt: job.runAt ? toDate(job.runAt) : now,
        leaseOwner: null,
        leaseExpiresAt: null,
        lastError: null,
        createdAt: now,
        updatedAt: now,
        completedAt: null,
        dedupeSlot: uniqueSlot(dedupeKey, id),
      };
      try {
        await store.insert('jobs', doc);
        return { id: id.toHexString(), created: true };
      } catch (err) {
        if (dedupeKey === null || !isDuplicateKeyError(err)) throw err;
        const existing = await jobs().findOne({ dedupeSlot: valueSlot(dedupeKey) }, { projection: { _id: 1 } });
        if (existing) return { id: idString(existing['_id']), created: false };
        // The holder was purged in between: try again.
      }
    }
    throw storageError('jobs.enqueue', 'dedupe key kept changing hands');
  }

  /**
   * Claims one job by compare-and-set; null when another worker (or change) got there first.
   * A job that cannot be read (a document edited by hand, a field of the wrong type) is
   * dead-lettered with the reason instead: throwing would fail the whole claim, after the jobs
   * claimed before it were leased, again at every claim.
   */
  async function claimJob(doc: Stored, worker: string, now: Date, leaseExpiresAt: Date): Promise<JobRecord | null> {
    let attempts: number;
    try {
      attempts = num(doc, 'attempts');
    } catch (error) {
      await deadLetterUnreadable(doc, error, now);
      return null;
    }
    const updated = await store.casUpdate('jobs', doc, {
      status: 'running',
      leaseOwner: worker,
      leaseExpiresAt,
      attempts: attempts + 1,
      updatedAt: now,
    });
    if (!updated) return null;
    try {
      return decodeJob(updated);
    } catch (error) {
      await deadLetterUnreadable(updated as Stored, error, now);
      return null;
    }
  }

  async function deadLetterUnreadable(doc: Stored, error: unknown, now: Date): Promise<void> {
    const message = `The stored job cannot be read: ${error instanceof Error ? error.message : String(error)}`;
    await store.casUpdate('jobs', doc, { status: 'dead', leaseOwner: null, leaseExpiresAt: null, lastError: { code: 'unreadable_job', message: recordedText(message, MAX_ERROR_MESSAGE_BYTES) }, updatedAt: now });
  }

  /** A candidate's ordering key; a key of the wrong type reads as none (the claim then dead-letters the job). */
  function keyOf(doc: Raw): string | null {
    try {
      return strOrNull(doc, 'orderingKey');
    } catch {
      return null;
    }
  }

  /**
   * Takes the ordering guard of `key` for `job` (the revision of it the claim read); false
   * while the guard is held. A guard whose lease expired holds nothing. A live guard holds
   * its key only while its job is running under it (`holdsKey`); otherwise (a guard left by a
   * crash between a completion, failure or release and the guard's removal, or by an older
   * version) it is taken over, provided it is still the revision seen holding nothing.
   */
  async function takeGuard(key: string, job: Stored, worker: string, now: Date, leaseExpiresAt: Date): Promise<boolean> {
    if (!(job._id instanceof ObjectId)) return false;
    const fields = { jobId: job._id, jobRev: job._rev, worker, leaseExpiresAt };
    let orphanRev: unknown = null;
    for (let round = 0; round < 2; round++) {
      const seenOrphan = orphanRev;
      const held = await store.modify<{ taken: true } | { guard: Stored } | { busy: true }>(
        'jobs.claim',
        'jobOrder',
        key,
        (doc) => {
          if (doc === null) return { kind: 'insert', doc: fields, value: () => ({ taken: true }) };
          const expires = dateOrNull(doc, 'leaseExpiresAt');
          const live = expires !== null && expires.getTime() > now.getTime();
          if (live && (seenOrphan === null || doc._rev !== seenOrphan)) return { kind: 'return', value: { guard: doc } };
          return { kind: 'update', set: fields, value: () => ({ taken: true }) };
        },
        // A guard document nobody can write now (a write guard left on its revision by a dropped
        // connection, until guardTimeoutMs) holds its key back, as a busy job document is
        // skipped: the claim goes on with the other due jobs instead of failing as a whole.
        { contended: () => ({ busy: true }) },
      );
      if ('taken' in held) return true;
      if ('busy' in held) return false;
      if (round > 0 || (await holdsKey(held.guard, now))) return false;
      orphanRev = held.guard._rev;
    }
    return false;
  }

  /**
   * Whether the live ordering guard `guard` still holds its key at `now`: its job runs under
   * it (running, leased to the guard's worker, lease live), or a claim of the job may still be
   * under way (the job is at the revision that claim read, `jobRev`: its compare-and-set can
   * still succeed). A job done, dead, gone, pending at another revision, or running for
   * another worker or with an expired lease holds nothing through this guard (a claim then
   * checks, under the guard, that no job of the key runs with a live lease). A guard of an
   * older version (no `jobRev`) holds its key unless its job is done, dead or gone.
   */
  async function holdsKey(guard: Stored, now: Date): Promise<boolean> {
    const holder = guard['jobId'];
    if (!(holder instanceof ObjectId)) return true;
    const job = await jobs().findOne({ _id: holder }, { projection: { _id: 1, _rev: 1, status: 1, leaseOwner: 1, leaseExpiresAt: 1 } });
    if (job === null || job['status'] === 'done' || job['status'] === 'dead') return false;
    if (isLive(job, now) && job['leaseOwner'] === guard['worker']) return true;
    const jobRev = guard['jobRev'];
    return typeof jobRev !== 'string' || job['_rev'] === jobRev;
  }

  /** Drops the ordering guard of `key` when it still belongs to `jobId` (and `worker`). */
  async function dropGuard(key: string, jobId: ObjectId, worker: string | null): Promise<void> {
    await store.modify<void>(
      'jobs.claim',
      'jobOrder',
      key,
      (doc) => {
        if (doc === null) return { kind: 'return', value: undefined };
        const holder = doc['jobId'];
        const sameJob = holder instanceof ObjectId && holder.equals(jobId);
        if (!sameJob || (worker !== null && doc['worker'] !== worker)) return { kind: 'return', value: undefined };
        return { kind: 'delete', value: undefined };
      },
      // A guard that cannot be removed now (a write guard a dropped connection left on its
      // revision) is left: its job no longer runs under it, so it holds nothing (`holdsKey`)
      // and the next claim takes it over. The job's own change, already made, is reported.
      { contended: () => undefined },
    );
  }

  /**
   * The job that keeps `doc` from running now (another job of the key running with a live
   * lease, or an older unfinished one not parked on a wait key), or null.
   */
  async function blocker(doc: Stored, key: string, now: Date): Promise<Raw | null> {
    const createdAt = doc['createdAt'];
    return jobs().findOne(
      {
        orderingKey: key,
        _id: { $ne: doc._id },
        $or: [
          { status: 'running', leaseExpiresAt: { $gt: now } },
          // An older job parked on a wait key does not hold the younger ones back.
          { status: 'running', createdAt: { $lt: createdAt } },
          { status: 'running', createdAt, _id: { $lt: doc._id } },
          { status: 'pending', waitKey: null, createdAt: { $lt: createdAt } },
          { status: 'pending', waitKey: null, createdAt, _id: { $lt: doc._id } },
          // ... until its retry time has come: then it is the key's head again.
          { status: 'pending', runAt: { $lte: now }, createdAt: { $lt: createdAt } },
          { status: 'pending', runAt: { $lte: now }, createdAt, _id: { $lt: doc._id } },
        ],
      },
      { projection: { _id: 1, status: 1, runAt: 1, leaseExpiresAt: 1 } },
    );
  }

  /**
   * `blocker` decided in memory over `others` (the unfinished jobs of the key, read after its
   * guard was taken): whether one of them keeps `doc` from running now. Undefined when a field
   * it compares is not of its usual type (a document edited by hand), where MongoDB's
   * comparison rules decide: the caller then asks the server (`blocker`).
   */
  function blockedAmong(doc: Stored, others: Raw[], now: Date): boolean | undefined {
    const id = doc._id;
    const created = doc['createdAt'];
    if (!(id instanceof ObjectId) || !(created instanceof Date)) return undefined;
    const at = now.getTime();
    for (const other of others) {
      const otherId = other['_id'];
      if (otherId instanceof ObjectId && otherId.equals(id)) continue;
      const { status, createdAt, runAt, leaseExpiresAt, waitKey } = other;
      if (!(otherId instanceof ObjectId) || typeof status !== 'string' || typeof other['orderingKey'] !== 'string' || !(createdAt instanceof Date)) return undefined;
      if (!(runAt instanceof Date) || !(leaseExpiresAt === null || leaseExpiresAt === undefined || leaseExpiresAt instanceof Date)) return undefined;
      if (!(waitKey === null || waitKey === undefined || typeof waitKey === 'string')) return undefined;
      const older = createdAt.getTime() < created.getTime() || (createdAt.getTime() === created.getTime() && otherId.toHexString() < id.toHexString());
      if (status === 'running' && ((leaseExpiresAt instanceof Date && leaseExpiresAt.getTime() > at) || older)) return true;
      // An older job parked on a wait key does not hold the younger ones back, until its retry time has come.
      if (status === 'pending' && older && (waitKey === null || waitKey === undefined || runAt.getTime() <= at)) return true;
    }
    return false;
  }

  /**
   * Claims the ordered jobs `heads` (claimable heads of distinct keys, in due order, as read
   * fresh), each under its key's guard once no other job of the key holds it back. Every
   * guard is taken first; then one read of the guarded keys' unfinished jobs decides them all
   * (`blockedAmong`, the same conditions as `blocker`): on FerretDB any query but an `_id`
   * lookup scans the whole jobs collection, so one read per key made claims slow. The claimed
   * jobs go to `onClaimed` in `heads` order, also when another head's claim then fails (so the
   * failing claim gives them back); the guards of the jobs not claimed are dropped.
   */
  async function claimOrdered(heads: { doc: Stored; key: string }[], worker: string, now: Date, leaseExpiresAt: Date, onClaimed: (job: JobRecord) => void): Promise<void> {
    const candidates = heads.filter((head) => head.doc._id instanceof ObjectId);
    const guarded = await settleAll(candidates, async (head) => ((await takeGuard(head.key, head.doc, worker, now, leaseExpiresAt)) ? head : null));
    const held = guarded.values.filter((head): head is { doc: Stored; key: string } => head !== null && head !== undefined);
    const claimed = new Set<Stored>();
    try {
      if (guarded.error !== undefined) throw guarded.error;
      if (held.length === 0) return;
      const keys = held.map((head) => head.key);
      const unfinished = await jobs()
        .find({ orderingKey: keys.length === 1 ? keys[0] : { $in: keys }, status: { $in: ['pending', 'running'] } }, { projection: BLOCKER_FIELDS })
        .toArray();
      const byKey = new Map<string, Raw[]>(keys.map((key) => [key, []]));
      for (const other of unfinished) {
        const value = other['orderingKey'];
        for (const key of Array.isArray(value) ? value : [value]) if (typeof key === 'string') byKey.get(key)?.push(other);
      }
      const results = await settleAll(held, async ({ doc, key }) => {
        const blocked = blockedAmong(doc, byKey.get(key) ?? [], now) ?? (await blocker(doc, key, now)) !== null;
        if (blocked) return null;
        const job = await claimJob(doc, worker, now, leaseExpiresAt);
        if (job) claimed.add(doc);
        return job;
      });
      for (const job of results.values) if (job) onClaimed(job);
      if (results.error !== undefined) throw results.error;
    } finally {
      // Every unused guard is dropped, also past a failed drop: each one left names a job at the
      // revision this claim read, so it holds its key back until the claim's lease expires.
      await mapLimited(held.filter((head) => !claimed.has(head.doc)), (head) =>
        dropGuard(head.key, head.doc._id as ObjectId, worker).then(
          () => null,
          (error: unknown) => ({ error }),
        ),
      ).then((dropped) => {
        const failed = dropped.find((result) => result !== null);
        if (failed) throw failed.error;
      });
    }
  }

  /**
   * For each of `keys`, the one job a claim may take now, if any: the key's oldest unfinished
   * job, when it is due (pending with `runAt` passed, or running with an expired lease), of a
   * wanted type, and no job of the key runs with a live lease. One read for all the keys,
   * without the guards (`claimOrdered` checks again under them); returns `HEAD_FIELDS`.
   */
  async function claimableHeads(keys: string[], now: Date, types: ReadonlySet<string> | null): Promise<Raw[]> {
    if (keys.length === 0) return [];
    const unfinished = await jobs()
      .find({ orderingKey: keys.length === 1 ? keys[0] : { $in: keys }, status: { $in: ['pending', 'running'] } }, { projection: HEAD_FIELDS })
      .toArray();
    const byKey = new Map<string, { docs: Raw[]; live: boolean }>();
    for (const doc of unfinished) {
      const key = strOrNull(doc, 'orderingKey');
      if (key === null) continue;
      const seen = byKey.get(key) ?? { docs: [], live: false };
      seen.docs.push(doc);
      seen.live ||= isLive(doc, now);
      byKey.set(key, seen);
    }
    const heads: Raw[] = [];
    for (const { docs, live } of byKey.values()) {
      if (live) continue;
      // The oldest job, or the oldest due one before it when every older one is parked on a
      // wait key (a parked job does not hold back the younger jobs of its key).
      for (const doc of docs.sort(byCreation)) {
        if (isDue(doc, now)) {
          // A head whose type cannot be read is taken too: its claim dead-letters it (unreadable).
          if (types === null || typeof doc['type'] !== 'string' || types.has(doc['type'])) heads.push(doc);
          break;
        }
        if (!(doc['status'] === 'pending' && strOrNull(doc, 'waitKey') !== null)) break;
      }
    }
    return heads;
  }

  async function owned(id: string, worker: string): Promise<Stored | null> {
    const oid = parseObjectId(id);
    if (!oid) return null;
    const doc = (await jobs().findOne({ _id: oid })) as Stored | null;
    if (doc?.['status'] !== 'running' || doc['leaseOwner'] !== worker) return null;
    return doc;
  }

  /**
   * Owner-only transition of a running job, retried when the job changed underneath.
   * `notOwned` is answered only when a fresh read shows the job is not `worker`'s: a job
   * still owned after every retry (a write guard left by a dropped connection) is a
   * StorageError, never a false "you lost it" that would make the worker drop its result.
   */
  async function transition<T>(
    operation: `jobs.${string}`,
    id: string,
    worker: string,
    notOwned: T,
    change: (doc: Stored, now: Date) => { set: Raw; value: T },
  ): Promise<T> {
    for (let attempt = 0; attempt < TRANSITION_ATTEMPTS; attempt++) {
      await conflictBackoff(attempt);
      const doc = await owned(id, worker);
      if (!doc) return notOwned;
      const now = store.now();
      const step = change(doc, now);
      const updated = await store.casUpdate('jobs', doc, step.set);
      if (updated) {
        const key = strOrNull(doc, 'orderingKey');
        if (key !== null && doc._id instanceof ObjectId && updated['status'] !== 'running') await dropGuard(key, doc._id, worker);
        return step.value;
      }
    }
    throw storageError(operation, `gave up after ${TRANSITION_ATTEMPTS} write conflicts on job ${id}, which ${worker} still holds`);
  }

  /**
   * Extends one owned job's lease, and its ordering guard with it while the guard is still
   * this job's (same job, same worker). It never creates a guard: a heartbeat overlapping the
   * job's completion or failure would otherwise put back the guard the completion dropped,
   * holding the key's next job back for a whole lease.
   *
   * A job of an ordering key keeps its lease only while no other job of the key holds the
   * key: once its lease lapsed, an older job of the key (a requeued dead letter) may have been
   * claimed, and extending the lapsed lease would run two jobs of the key at once. The lease
   * is written first and the key checked after (the guard, then the key's other running jobs),
   * while a claim takes the guard first and checks the key's running jobs after: of a claim and
   * a heartbeat racing, at least one sees the other. A heartbeat that finds the key held puts
   * the job's lapsed lease back and reports the job lost.
   *
   * A job that finds the key free while another job's guard is there (lapsed, or holding
   * nothing) takes that guard over, by compare-and-set on the revision it judged: the guard's
   * own job renews its guard without looking at the key's running jobs, so of two heartbeats
   * of one key (one worker's lapsed jobs, `heartbeatMany`) the guard decides which one keeps
   * the key, and a stale guard taken over is one a claim would take over too. A guard that
   * cannot be taken over now (a write guard a dropped connection left on its revision) is
   * left to its own job: this job is reported lost.
   */
  async function heartbeatOne(id: string, worker: string, leaseMs: number): Promise<boolean> {
    let key: string | null = null;
    let leaseExpiresAt = new Date(0);
    let before: Raw = {};
    let jobRev: unknown = null;
    let now = new Date(0);
    const ok = await transition('jobs.heartbeat', id, worker, false, (doc, at) => {
      key = strOrNull(doc, 'orderingKey');
      now = at;
      leaseExpiresAt = expiryAfter(at, leaseMs);
      before = { leaseExpiresAt: doc['leaseExpiresAt'] ?? null, updatedAt: doc['updatedAt'] ?? null };
      jobRev = doc._rev;
      return { set: { leaseExpiresAt, updatedAt: at }, value: true };
    });
    const oid = parseObjectId(id);
    if (!ok || key === null || !oid) return ok;
    const guardKey: string = key;
    const isMine = (doc: Stored): boolean => {
      const holder = doc['jobId'];
      return holder instanceof ObjectId && holder.equals(oid) && doc['worker'] === worker;
    };
    // The revision of another job's guard found holding nothing, with no other job of the key running.
    let free: unknown = null;
    for (let round = 0; round < 3; round++) {
      const seenFree = free;
      const guard = await store.modify<{ mine: true } | { other: Stored | null }>(
        'jobs.heartbeat',
        'jobOrder',
        guardKey,
        (doc) => {
          if (doc === null) return { kind: 'return', value: { other: null } };
          if (isMine(doc)) return { kind: 'update', set: { leaseExpiresAt }, value: () => ({ mine: true }) };
          if (seenFree !== null && doc._rev === seenFree) {
            return { kind: 'update', set: { jobId: oid, jobRev, worker, leaseExpiresAt }, value: () => ({ mine: true }) };
          }
          return { kind: 'return', value: { other: doc } };
        },
        // The key's guard cannot be written now (a write guard a dropped connection left on its
        // revision): when it is this job's, the job's own renewed lease holds the key (a claim
        // checks, under the guard, that no job of the key runs with a live lease), so the job is
        // renewed rather than the whole call failing; otherwise it is decided as usual.
        { contended: (doc) => (doc !== null && isMine(doc) ? { mine: true } : { other: doc }) },
      );
      if ('mine' in guard) return true;
      const other = guard.other;
      // No guard (none is created here): the key's running jobs decide.
      if (other === null) {
        if (!(await keyHeldByOther(guardKey, oid, other, now))) return true;
        break;
      }
      // The guard judged free could not be taken over (a write guard a dropped connection left
      // on its revision): its own job's heartbeat renews it as its own without looking at the
      // key's running jobs, so renewing this job too could give the key to both.
      if (seenFree !== null && other._rev === seenFree) break;
      if (await keyHeldByOther(guardKey, oid, other, now)) break;
      free = other._rev;
    }
    await restoreLease(oid, worker, leaseExpiresAt, before);
    return false;
  }

  /**
   * Whether a job of `key` other than `jobId` holds the key at `now`: `guard` (the key's guard,
   * not `jobId`'s) is live and still holds it (`holdsKey`), or another job of the key runs with
   * a live lease.
   */
  async function keyHeldByOther(key: string, jobId: ObjectId, guard: Stored | null, now: Date): Promise<boolean> {
    const holder = guard?.['jobId'];
    if (guard && !(holder instanceof ObjectId && holder.equals(jobId))) {
      const expires = dateOrNull(guard, 'leaseExpiresAt');
      if (expires !== null && expires.getTime() > now.getTime() && (await holdsKey(guard, now))) return true;
    }
    const running = await jobs().findOne(
      { orderingKey: key, _id: { $ne: jobId }, status: 'running', leaseExpiresAt: { $gt: now } },
      { projection: { _id: 1 } },
    );
    return running !== null;
  }

  /** Puts back the lease a refused heartbeat wrote (`before`), unless the job changed since. */
  async function restoreLease(jobId: ObjectId, worker: string, written: Date, before: Raw): Promise<void> {
    const doc = (await jobs().findOne({ _id: jobId })) as Stored | null;
    if (doc?.['status'] !== 'running' || doc['leaseOwner'] !== worker) return;
    if (dateOrNull(doc, 'leaseExpiresAt')?.getTime() !== written.getTime()) return;
    await store.casUpdate('jobs', doc, before);
  }

  /** Gives an owned running job back: pending, due now, its claim's attempt not counted, lease cleared. */
  function releaseOne(operation: `jobs.${string}`, id: string, worker: string): Promise<boolean> {
    return transition<boolean>(operation, id, worker, false, (doc, now) => ({
      set: { status: 'pending', attempts: Math.max(0, num(doc, 'attempts') - 1), runAt: now, leaseOwner: null, leaseExpiresAt: null, updatedAt: now },
      value: true,
    }));
  }

  function completeOne(id: string, worker: string): Promise<boolean> {
    return transition('jobs.complete', id, worker, false, (_doc, now) => ({
      set: { status: 'done', leaseOwner: null, leaseExpiresAt: null, completedAt: now, updatedAt: now },
      value: true,
    }));
  }

  /**
   * Makes the pending jobs waiting on any of `waitKeys` due now, one compare-and-set per job
   * (a plain updateMany is not atomic per document on FerretDB, and would race `claim`/`fail`).
   */
  async function wakeJobs(waitKeys: string[]): Promise<number> {
    if (waitKeys.length === 0) return 0;
    const filter: Filter<Raw> = { status: 'pending', waitKey: waitKeys.length === 1 ? waitKeys[0] : { $in: waitKeys } };
    let woken = 0;
    // Re-read after lost races: a job changed by someone else is decided again.
    for (let round = 0; round < 10; round++) {
      const waiting = (await jobs().find(filter).toArray()) as Stored[];
      if (waiting.length === 0) break;
      const results = await mapLimited(waiting, async (doc) => {
        const now = store.now();
        const runAt = date(doc, 'runAt');
        const set: Raw = { waitKey: null, updatedAt: now };
        if (runAt.getTime() > now.getTime()) set['runAt'] = now;
        return (await store.casUpdate('jobs', doc, set)) !== null;
      });
      woken += results.filter(Boolean).length;
    }
    return woken;
  }

  /** The query of a `tenant`/`type` filter, whose text must be storable (checked before any I/O). */
  function filterOf(filter?: { tenant?: string; type?: string }): Raw {
    checkLookup({ tenant: filter?.tenant, type: filter?.type });
    const query: Raw = {};
    if (filter?.tenant !== undefined) query['tenant'] = filter.tenant;
    if (filter?.type !== undefined) query['type'] = filter.type;
    return query;
  }

  return {
    enqueue: (job) =>
      store.run('jobs.enqueue', () => {
        return enqueueOne(job, checkInput(job));
      }),

    enqueueMany: (list) =>
      store.run('jobs.enqueueMany', async () => {
        // Validate and encode everything first so a bad entry stores nothing.
        checkArray('jobs', list);
        const payloads = list.map(checkInput);
        const results: EnqueueResult[] = [];
        for (const [index, job] of list.entries()) results.push(await enqueueOne(job, payloads[index]));
        return results;
      }),

    // Reads due jobs in due order, in growing rounds, until `limit` jobs are claimed or none
    // is left. Each ordering key met is decided once: only its head (the oldest unfinished
    // job) may run, and only when it is due, so the key's other jobs are left out of the
    // following reads, and the head, when claimable, is taken at its own place in due order
    // (it often sorts after the newer jobs it holds back). However many jobs are held back,
    // the jobs behind them are still reached, as on the memory and Prisma adapters.
    claim: (options: ClaimJobsOptions) =>
      store.run('jobs.claim', async () => {
        checkNonEmpty('worker', options.worker);
        checkPositiveInt('limit', options.limit);
        checkPositiveInt('leaseMs', options.leaseMs);
        if (Array.isArray(options.types)) for (const type of options.types) checkStorableText('type', type);
        const claimed: JobRecord[] = [];
        const now = store.now();
        const leaseExpiresAt = expiryAfter(now, options.leaseMs);
        const types = options.types ? new Set(options.types) : null;
        // Unordered jobs already attempted (a lost compare-and-set may leave one due).
        const tried: Stored['_id'][] = [];
        const decidedKeys = new Set<string>();
        // Claimable heads of decided keys (`HEAD_FIELDS`), in due order, waiting for their turn.
        let heads: Raw[] = [];

        // Takes the waiting heads that sort up to `doc` (all of them when null), in due order,
        // as many at once as the claim still wants.
        const takeHeads = async (doc: Raw | null): Promise<void> => {
          while (claimed.length < options.limit) {
            const batch: Raw[] = [];
            while (heads[0] && batch.length < options.limit - claimed.length && (doc === null || dueOrder(heads[0], doc) <= 0)) batch.push(heads.shift() as Raw);
            if (batch.length === 0) return;
            // Only ObjectId jobs are claimed in order (`claimOrdered`).
            const ids = batch.map((head) => head['_id']).filter((id): id is ObjectId => id instanceof ObjectId);
            const fresh = new Map<string, Stored>();
            const found = ids.length === 0 ? [] : await jobs().find({ _id: ids.length === 1 ? ids[0] : { $in: ids } }).toArray();
            for (const job of found) fresh.set(idString(job['_id']), job as Stored);
            const ready: { doc: Stored; key: string }[] = [];
            for (const head of batch) {
              const key = strOrNull(head, 'orderingKey');
              const job = fresh.get(idString(head['_id']));
              if (key === null || job === undefined || job['orderingKey'] !== key || !isDue(job, now)) continue;
              ready.push({ doc: job, key });
            }
            await claimOrdered(ready, options.worker, now, leaseExpiresAt, (job) => claimed.push(job));
          }
        };

        try {
          let size = options.limit * 2 + 8;
          while (claimed.length < options.limit) {
            const query: Filter<Raw> = {
              $or: [
                { status: 'pending', runAt: { $lte: now } },
                { status: 'running', leaseExpiresAt: { $lte: now } },
              ],
            };
            if (options.types) query['type'] = { $in: options.types };
            if (tried.length > 0) query['_id'] = { $nin: tried };
            if (decidedKeys.size > 0) query['orderingKey'] = { $nin: [...decidedKeys] };
            const candidates = (await jobs().find(query).sort({ runAt: 1, createdAt: 1, _id: 1 }).limit(size).toArray()) as Stored[];
            // Decide every ordering key of the batch at once; their other jobs are not read again.
            const keys = new Set<string>();
            for (const doc of candidates) {
              const key = keyOf(doc);
              if (key !== null) keys.add(key);
            }
            for (const key of keys) decidedKeys.add(key);
            heads = [...heads, ...(await claimableHeads([...keys], now, types))].sort(dueOrder);
            // The heads sorting before an unordered job are taken before it (a batch at a time).
            for (const doc of candidates) {
              if (keyOf(doc) !== null) continue;
              await takeHeads(doc);
              if (claimed.length >= options.limit) break;
              tried.push(doc._id);
              const job = await claimJob(doc, options.worker, now, leaseExpiresAt);
              if (job) claimed.push(job);
            }
            const last = candidates[candidates.length - 1];
            if (last) await takeHeads(last);
            if (candidates.length < size) {
              // Nothing due is left unread: the remaining heads are next in due order.
              await takeHeads(null);
              break;
            }
            size = Math.min(size * 2, MAX_CANDIDATES);
          }
        } catch (error) {
          // The call rejects, so the worker never learns of the jobs this call already leased
          // to it: give them back (best effort, as `release`: due now, attempt not counted)
          // rather than leave them held, unrun, until their leases lapse.
          await mapLimited(claimed, (job) => releaseOne('jobs.claim', job.id, options.worker).catch(() => false));
          throw error;
        }
        return claimed;
      }),

    heartbeat: (id, worker, leaseMs) =>
      store.run('jobs.heartbeat', () => {
        checkPositiveInt('leaseMs', leaseMs);
        checkStorableText('worker', worker);
        return heartbeatOne(id, worker, leaseMs);
      }),

    // Each id goes through `heartbeat`'s owner-checked compare-and-set (and guard renewal), a
    // few at a time.
    heartbeatMany: (ids, worker, leaseMs) =>
      store.run('jobs.heartbeatMany', async () => {
        checkArray('ids', ids);
        checkPositiveInt('leaseMs', leaseMs);
        checkStorableText('worker', worker);
        const unique = [...new Set(ids)].filter((id) => typeof id === 'string');
        const alive = await mapLimited(unique, (id) => heartbeatOne(id, worker, leaseMs));
        return unique.filter((_, i) => alive[i]);
      }),

    complete: (id, worker) =>
      store.run('jobs.complete', () => {
        checkStorableText('worker', worker);
        return completeOne(id, worker);
      }),

    // Each id goes through `complete`'s owner-checked compare-and-set (and ordering-guard
    // release), a few at a time.
    completeMany: (ids, worker) =>
      store.run('jobs.completeMany', async () => {
        checkArray('ids', ids);
        checkStorableText('worker', worker);
        const unique = [...new Set(ids)].filter((id) => typeof id === 'string');
        const done = await mapLimited(unique, (id) => completeOne(id, worker));
        return unique.filter((_, i) => done[i]);
      }),

    fail: (id, worker, failure) =>
      store.run('jobs.fail', () => {
        checkDate('retryAt', failure.retryAt);
        if (typeof failure.error?.message !== 'string') throw new InvalidArgumentError('failure.error.message must be a string');
        checkStorableText('waitKey', failure.waitKey);
        checkStorableText('worker', worker);
        return transition<FailOutcome>('jobs.fail', id, worker, 'lost', (doc, now) => {
          const common = { leaseOwner: null, leaseExpiresAt: null, lastError: storedError(failure.error), updatedAt: now };
          if (num(doc, 'attempts') >= num(doc, 'maxAttempts') || failure.final === true) {
            return { set: { ...common, status: 'dead' }, value: 'dead' };
          }
          return {
            set: { ...common, status: 'pending', runAt: toDate(failure.retryAt), waitKey: failure.waitKey ?? null },
            value: 'retrying',
          };
        });
      }),

    release: (id, worker) =>
      store.run('jobs.release', () => {
        checkStorableText('worker', worker);
        return releaseOne('jobs.release', id, worker);
      }),

    wake: (waitKey) =>
      store.run('jobs.wake', () => {
        checkNonEmpty('waitKey', waitKey);
        return wakeJobs([waitKey]);
      }),

    wakeMany: (waitKeys) =>
      store.run('jobs.wakeMany', () => {
        checkArray('waitKeys', waitKeys);
        for (const waitKey of waitKeys) checkNonEmpty('waitKey', waitKey);
        return wakeJobs([...new Set(waitKeys)]);
      }),

    get: (id) =>
      store.run('jobs.get', async () => {
        const oid = parseObjectId(id);
        if (!oid) return null;
        const doc = await jobs().findOne({ _id: oid });
        return doc ? decodeJob(doc, { readable: true }) : null;
      }),

    listDead: (filter) =>
      store.run('jobs.listDead', async () => {
        checkLookup({ groupId: filter?.groupId });
        const cursor = jobs()
          .find({ ...filterOf(filter), ...(filter?.groupId !== undefined ? { groupId: { $eq: filter.groupId } } : {}), status: 'dead' })
          .sort(filter?.newestFirst ? { updatedAt: -1, createdAt: -1, _id: -1 } : { createdAt: 1, _id: 1 });
        if (filter?.limit !== undefined) {
          checkPositiveInt('limit', filter.limit);
          cursor.limit(filter.limit);
        }
        return (await cursor.toArray()).map((doc) => decodeJob(doc, { readable: true }));
      }),

    requeue: (id) =>
      store.run('jobs.requeue', async () => {
        const oid = parseObjectId(id);
        if (!oid) return false;
        return store.modify<boolean>('jobs.requeue', 'jobs', oid, (doc) => {
          if (doc === null || doc['status'] !== 'dead') return { kind: 'return', value: false };
          const now = store.now();
          return {
            kind: 'update',
            set: { status: 'pending', attempts: 0, runAt: now, waitKey: null, leaseOwner: null, leaseExpiresAt: null, lastError: null, updatedAt: now },
            value: () => true,
          };
        });
      }),

    discard: (id) =>
      store.run('jobs.discard', async () => {
        const oid = parseObjectId(id);
        if (!oid) return false;
        // A compare-and-delete on the revision read dead (FerretDB applies a filtered delete
        // non-atomically): a job requeued or claimed in between is re-read, no longer dead, and kept.
        return store.modify<boolean>('jobs.discard', 'jobs', oid, (doc) => {
          if (doc === null || doc['status'] !== 'dead') return { kind: 'return', value: false };
          return { kind: 'delete', value: true };
        });
      }),

    counts: (filter) =>
      store.run('jobs.counts', async () => {
        const result: Record<JobStatus, number> = { pending: 0, running: 0, done: 0, dead: 0 };
        const groups = await jobs()
          .aggregate<{ _id: unknown; n: unknown }>([{ $match: filterOf(filter) }, { $group: { _id: '$status', n: { $sum: 1 } } }])
          .toArray();
        for (const row of groups) {
          const s = STATUSES.find((candidate) => candidate === row._id);
          if (s && typeof row.n === 'number') result[s] = row.n;
        }
        return result;
      }),

    purgeCompleted: (before) =>
      store.run('jobs.purgeCompleted', async () => {
        checkDate('before', before);
        // `done` is terminal, so a plain filtered delete cannot race a state change.
        const result = await jobs().deleteMany({ status: 'done', completedAt: { $lt: toDate(before) } });
        return result.deletedCount;
      }),
  };
}
