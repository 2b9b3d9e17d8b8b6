/**
 * Write atomicity without transactions.
 *
 * Every mutable document carries a revision token `_rev`. A write is a compare-and-set
 * "from revision X to a fresh revision Y": `updateOne({ _id, _rev: X }, { $set: …, _rev: Y })`.
 * On MongoDB that conditional update is atomic on its own. FerretDB 1.24 (SQLite backend)
 * evaluates the filter in its own process and then overwrites the document by `_id`, so two
 * concurrent compare-and-sets can both "win" (measured: 20 racing `findOneAndUpdate` calls on
 * one document gave several winners). Its unique indexes, however, are enforced by SQLite.
 * So, in guarded mode, the writer first inserts a guard document whose `_id` is X into the
 * guards collection: the unique `_id` lets exactly one writer transition away from revision
 * X; the conditional update then runs with no concurrent writer of that document; the guard
 * is deleted afterwards. A stale writer holding an old X either loses the guard insert or
 * finds `_rev` changed. A guard left by a crashed writer is removed after `guardTimeoutMs`.
 *
 * `guard: 'auto'` enables guards when the server reports `ferretdbVersion` in `buildInfo`.
 */
import {
  type Collection,
  type CollectionOptions,
  type Db,
  type Filter,
  type MongoClient,
  MongoNotConnectedError,
  MongoTopologyClosedError,
} from 'mongodb';
import type { StorageOperation } from '@org/maestrano-sdk';
import { type DocId, newRev, type Raw, type Stored } from './documents.js';
import { duplicateOnId, isDuplicateKeyError, storageError, toStorageError } from './errors.js';
import { InvalidArgumentError } from './validation.js';

export type GuardMode = 'auto' | 'always' | 'never';

export interface CollectionNames {
  groups: string;
  users: string;
  memberships: string;
  idMaps: string;
  cursors: string;
  jobs: string;
  jobOrder: string;
  ledger: string;
  replay: string;
  locks: string;
  guards: string;
}

export function collectionNames(prefix: string): CollectionNames {
  return {
    groups: `${prefix}groups`,
    users: `${prefix}users`,
    memberships: `${prefix}memberships`,
    idMaps: `${prefix}id_maps`,
    cursors: `${prefix}cursors`,
    jobs: `${prefix}jobs`,
    jobOrder: `${prefix}job_order`,
    ledger: `${prefix}ledger`,
    replay: `${prefix}replay`,
    locks: `${prefix}locks`,
    guards: `${prefix}write_guards`,
  };
}

/** What a `modify` decision asks for, given the current document (or null). */
export type Step<T> =
  | { kind: 'return'; value: T }
  | { kind: 'insert'; doc: Raw; value: (doc: Stored) => T }
  | { kind: 'update'; set: Raw; value: (doc: Stored) => T }
  | { kind: 'delete'; value: T };

const MAX_ATTEMPTS = 25;

/**
 * Every read decides a write (read, then compare-and-set), so it must see the adapter's own
 * writes and everyone else's: on the primary, at `local`. A user's `Db` carries its client's
 * options, and an app's connection string often asks for `readPreference=secondaryPreferred`
 * (reads from a lagging secondary: an id map just inserted reads as absent, and the SDK
 * creates the record twice) or `readConcernLevel=majority` (with `w: 1` writes, the adapter's
 * last write is not visible yet). The app's write concern is kept.
 */
const READ_OWN_WRITES: CollectionOptions = { readPreference: 'primary', readConcern: { level: 'local' } };

/** The unique indexes besides `_id` (created by `ensureIndexes()`, verified by `checkIndexes()`). */
const SECONDARY_UNIQUE_INDEXES: readonly (readonly [keyof CollectionNames, string])[] = [
  ['idMaps', 'scope_connec_unique'],
  ['idMaps', 'scope_local_unique'],
  ['jobs', 'dedupe_unique'],
];

export class Store {
  readonly names: CollectionNames;
  readonly clock: () => Date;
  private readonly guardMode: GuardMode;
  private readonly guardTimeoutMs: number;
  private guarded: Promise<boolean> | undefined;
  private indexesChecked: Promise<void> | undefined;
  private readonly mayReconnect: () => boolean;

  constructor(
    readonly db: Db,
    options: {
      prefix: string;
      clock: () => Date;
      guard: GuardMode;
      guardTimeoutMs: number;
      /** False once the adapter closed its own client: it is then never reopened. Default: always true. */
      mayReconnect?: () => boolean;
    },
  ) {
    this.names = collectionNames(options.prefix);
    this.clock = options.clock;
    this.guardMode = options.guard;
    this.guardTimeoutMs = options.guardTimeoutMs;
    this.mayReconnect = options.mayReconnect ?? (() => true);
  }

  collection(name: keyof CollectionNames): Collection<Raw> {
    return this.db.collection<Raw>(this.names[name], READ_OWN_WRITES);
  }

  /** The adapter clock, as a fresh Date. */
  now(): Date {
    const value = this.clock();
    if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new InvalidArgumentError('the clock returned an invalid Date');
    return new Date(value.getTime());
  }

  /** Runs one contract operation; every failure leaves as `StorageError` naming it. */
  async run<T>(operation: StorageOperation, fn: () => Promise<T>): Promise<T> {
    try {
      return await this.reconnecting(async () => {
        await this.checkIndexes();
        return fn();
      });
    } catch (err) {
      throw toStorageError(operation, err);
    }
  }

  /**
   * Runs `fn`, and once more after `client.connect()` when it failed because the client's
   * topology is closed. The driver connects a client automatically at its first operation,
   * but when the server is unreachable then, it closes the topology it opened and keeps it:
   * every later operation fails with `MongoTopologyClosedError` (or `MongoNotConnectedError`)
   * even after the server is back, until someone calls `connect()`. Those errors come from
   * the first driver call of an operation (nothing was written), so running it again is safe.
   * A client closed on purpose (`adapter.close()`, or the owner's `client.close()`) is not
   * reopened. A failing `connect()` (server still down) is the operation's error; no loop.
   */
  async reconnecting<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!isTopologyClosed(err) || !this.mayReconnect() || closedByOwner(this.db.client)) throw err;
      await this.db.client.connect();
      return fn();
    }
  }

  /**
   * Verifies once per adapter that the unique indexes uniqueness depends on exist, so a
   * deployment that skipped `ensureIndexes()` fails loudly instead of storing duplicates.
   * A failed check is not cached.
   */
  checkIndexes(): Promise<void> {
    if (!this.indexesChecked) {
      const check = (async () => {
        for (const [name, index] of SECONDARY_UNIQUE_INDEXES) {
          const indexes = await this.collection(name)
            .listIndexes()
            .toArray()
            .catch((err: unknown) => {
              if ((err as { code?: unknown }).code === 26) return [];
              throw err;
            });
          if (!indexes.some((i) => i['name'] === index && i['unique'] === true)) {
            throw new InvalidArgumentError(`index ${index} of ${this.names[name]} is missing: call ensureIndexes() first`);
          }
        }
      })();
      this.indexesChecked = check;
      check.catch(() => {
        if (this.indexesChecked === check) this.indexesChecked = undefined;
      });
    }
    return this.indexesChecked;
  }

  /** Forgets the index check (after `ensureIndexes()`). */
  resetIndexCheck(): void {
    this.indexesChecked = undefined;
  }

  /** Whether writes take a guard (resolved once per adapter; retried after a failure). */
  async isGuarded(): Promise<boolean> {
    if (this.guardMode !== 'auto') return this.guardMode === 'always';
    if (!this.guarded) {
      const probe = this.db
        .admin()
        .command({ buildInfo: 1 })
        .then((info) => typeof info['ferretdbVersion'] === 'string');
      this.guarded = probe;
      probe.catch(() => {
        if (this.guarded === probe) this.guarded = undefined;
      });
    }
    return this.guarded;
  }

  /**
   * Compare-and-set from `current` (as read) to `current` + `set`. Returns the new document,
   * or null when another writer changed or removed it first (re-read and decide again).
   */
  async casUpdate(name: keyof CollectionNames, current: Stored, set: Raw): Promise<Stored | null> {
    const rev = newRev();
    const ok = await this.compareAndWrite(name, current, async (filter) => {
      const result = await this.collection(name).updateOne(filter, { $set: { ...set, _rev: rev } });
      return result.matchedCount === 1;
    });
    return ok ? { ...current, ...set, _rev: rev } : null;
  }

  /** Compare-and-delete of `current`; false when it changed or disappeared first. */
  async casDelete(name: keyof CollectionNames, current: Stored): Promise<boolean> {
    return this.compareAndWrite(name, current, async (filter) => {
      const result = await this.collection(name).deleteOne(filter);
      return result.deletedCount === 1;
    });
  }

  /**
   * Runs `write` only while `current` is still the stored revision. Unguarded (MongoDB),
   * the revision is part of the write's filter, which the server applies atomically.
   * Guarded (FerretDB), the guard excludes every other writer of this revision; the
   * revision is then checked with an `_id` read and the write filters on `_id` alone
   * (FerretDB only pushes `{ _id }` filters down to SQLite; any other filter scans the
   * whole collection).
   */
  private async compareAndWrite(
    name: keyof CollectionNames,
    current: Stored,
    write: (filter: Filter<Raw>) => Promise<boolean>,
  ): Promise<boolean> {
    if (!(await this.isGuarded())) return write({ _id: current._id, _rev: current._rev });
    return this.withGuard(current._rev, async () => {
      const fresh = await this.collection(name).findOne({ _id: current._id }, { projection: { _rev: 1 } });
      if (fresh?.['_rev'] !== current._rev) return false;
      return write({ _id: current._id });
    });
  }

  /** Inserts a new document with a fresh revision. Duplicate keys throw (driver error). */
  async insert(name: keyof CollectionNames, doc: Raw & { _id: DocId }): Promise<Stored> {
    const stored: Stored = { ...doc, _rev: newRev() };
    await this.collection(name).insertOne(stored);
    return stored;
  }

  /**
   * Read-decide-write loop on the document `_id = id`: `decide` sees the current document
   * (or null) and returns a step; a lost race (another writer first) re-reads and decides
   * again. An insert that hits a duplicate `_id` lost such a race, even when the other
   * writer's document is already gone again (created and deleted, e.g. a release racing a
   * claim). An insert that hits a unique index other than `_id` throws
   * `StorageConflictError`.
   */
  async modify<T>(
    operation: StorageOperation,
    name: keyof CollectionNames,
    id: DocId,
    decide: (doc: Stored | null) => Step<T>,
    options: {
      /**
       * The answer, given the document last read, when every attempt lost its compare-and-set
       * (a busy document, or a write guard a dropped connection left on its revision); without
       * it, a StorageError.
       */
      contended?: (doc: Stored | null) => T;
    } = {},
  ): Promise<T> {
    let doc: Stored | null = null;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      doc = (await this.collection(name).findOne({ _id: id })) as Stored | null;
      const step = decide(doc);
      switch (step.kind) {
        case 'return':
          return step.value;
        case 'insert': {
          try {
            const stored = await this.insert(name, { ...step.doc, _id: id });
            return step.value(stored);
          } catch (err) {
            if (!isDuplicateKeyError(err)) throw err;
            if (!(await this.lostInsertRace(name, id, err))) throw toStorageError(operation, err);
          }
          break;
        }
        case 'update': {
          if (!doc) throw storageError(operation, 'update decided without a document');
          const updated = await this.casUpdate(name, doc, step.set);
          if (updated) return step.value(updated);
          break;
        }
        case 'delete': {
          if (!doc) throw storageError(operation, 'delete decided without a document');
          if (await this.casDelete(name, doc)) return step.value;
          break;
        }
      }
      await conflictBackoff(attempt);
    }
    if (options.contended) return options.contended(doc);
    throw storageError(operation, `gave up after ${MAX_ATTEMPTS} write conflicts on one document`);
  }

  /**
   * Whether a duplicate-key error of an insert of `_id = id` into `name` was on `_id` (a
   * concurrent writer created that document first). MongoDB names the index in the error;
   * FerretDB does not, but a collection without another unique index can only collide on
   * `_id`. Otherwise the `_id` is looked up: only a document still there proves the race
   * (one created and deleted again meanwhile is then reported as a conflict).
   */
  private async lostInsertRace(name: keyof CollectionNames, id: DocId, err: unknown): Promise<boolean> {
    const onId = duplicateOnId(err);
    if (onId !== undefined) return onId;
    if (!SECONDARY_UNIQUE_INDEXES.some(([collection]) => collection === name)) return true;
    return (await this.collection(name).findOne({ _id: id }, { projection: { _id: 1 } })) !== null;
  }

  private async withGuard(rev: string, write: () => Promise<boolean>): Promise<boolean> {
    const guards = this.collection('guards');
    try {
      await guards.insertOne({ _id: rev, at: new Date() });
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
      // Another writer is moving the document away from `rev` right now, or crashed doing so.
      const guard = await guards.findOne({ _id: rev });
      const at = guard?.['at'];
      if (at instanceof Date && Date.now() - at.getTime() > this.guardTimeoutMs) {
        await guards.deleteOne({ _id: rev, at });
      }
      return false;
    }
    try {
      return await write();
    } finally {
      // A guard that outlives its write only blocks a revision nobody can reach any more.
      await guards.deleteOne({ _id: rev }).catch(() => undefined);
    }
  }
}

function isTopologyClosed(err: unknown): boolean {
  return err instanceof MongoTopologyClosedError || err instanceof MongoNotConnectedError;
}

/**
 * Whether `client.close()` was called on the client (the driver's internal flag; a driver
 * without it counts as not closed).
 */
function closedByOwner(client: MongoClient | undefined): boolean {
  return (client as unknown as { s?: { hasBeenClosed?: unknown } } | undefined)?.s?.hasBeenClosed === true;
}

/** Short randomized pause before the next compare-and-set attempt (none before the first). */
export function conflictBackoff(attempt: number): Promise<void> {
  if (attempt === 0) return Promise.resolve();
  const ms = Math.min(50, 2 ** Math.min(attempt, 5)) * (0.5 + Math.random());
  return new Promise((resolve) => setTimeout(resolve, ms));
}

