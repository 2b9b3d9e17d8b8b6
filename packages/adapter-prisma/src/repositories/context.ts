import { isStorableText, MAX_STORED_INSTANT_MS, MIN_STORED_INSTANT_MS, StorageConflictError, StorageError, type StorageOperation, wellFormedText } from '@org/maestrano-sdk';
import type { Executor } from '../client.js';
import { ADAPTER_ID } from '../errors.js';
import type { StatisticsRefresher } from './statistics.js';

export interface RepositoryContext {
  db: Executor;
  /** The adapter clock (`StorageOptions.clock`). */
  now(): Date;
  /** PostgreSQL planner statistics kept fresh as id-map scopes grow (see statistics.ts). */
  statistics: StatisticsRefresher;
}

// The storable instants (years 0001 to 9999; PostgreSQL has no year 0000) are the contract's: SQLite stores dates as ISO
// text and compares them as text, where a date outside them (`+010000-…`) no longer sorts by time.

/** `date` + `ms` for a computed expiry (lease, claim, lock), capped at the last storable instant. */
export function plus(date: Date, ms: number): Date {
  return new Date(Math.min(date.getTime() + ms, MAX_STORED_INSTANT_MS));
}

export function conflict(operation: StorageOperation, message: string): StorageConflictError {
  return new StorageConflictError(`${operation}: ${message}`, { adapterId: ADAPTER_ID, operation });
}

export function invalid(operation: StorageOperation, message: string): StorageError {
  return new StorageError(`${operation}: ${message}`, { adapterId: ADAPTER_ID, operation });
}

/** Atomic steps that race with other writers are retried a few times before giving up. */
export const RACE_RETRIES = 16;

/**
 * Waits before retry `attempt` of a lost race (none before the first): a random 0 to
 * min(2^attempt, 32) ms, so callers that keep colliding on one key spread out instead of
 * colliding in lockstep until the retries run out.
 */
export function raceBackoff(attempt: number): Promise<void> | undefined {
  if (attempt === 0) return undefined;
  return new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(2 ** attempt, 32)));
}

export function raceLost(operation: StorageOperation): StorageError {
  return new StorageError(`${operation}: the record kept changing under concurrent writers; try again`, {
    adapterId: ADAPTER_ID,
    operation,
  });
}

// Argument checks: bad input is a StorageError naming the operation and reaches no SQL.

/**
 * A non-empty text argument the adapter stores or looks up (an id, a key, an owner, a worker, a
 * type): it must also be storable text (see `storableText`).
 */
export function nonEmpty(operation: StorageOperation, name: string, value: unknown): void {
  nonEmptyString(operation, name, value);
  storableText(operation, name, value);
}

/** A non-empty string, whatever it holds (free diagnostic text, recorded well-formed). */
export function nonEmptyString(operation: StorageOperation, name: string, value: unknown): void {
  if (typeof value !== 'string' || value.length === 0) throw invalid(operation, `${name} must be a non-empty string`);
}

/**
 * Refuses a text argument holding a NUL character or an unpaired UTF-16 surrogate, as JSON
 * holding one is refused: PostgreSQL fails on a NUL and stores an unpaired surrogate as U+FFFD
 * (two different ids would then collide), SQLite reads it back changed. `null` and `undefined`
 * pass. One linear scan of the string: cheap enough for every row of a batch.
 */
export function storableText(operation: StorageOperation, name: string, value: unknown): void {
  if (typeof value === 'string' && !isStorableText(value)) throw unstorable(operation, name);
}

/**
 * The text arguments an operation looks rows up by (or addresses a row by), by name: each must
 * be storable text, as when it is stored, or a lookup by an unpaired surrogate would find the
 * row PostgreSQL stored as U+FFFD (and a NUL would fail inside the database). Checked before
 * any SQL.
 */
export function storableLookup(operation: StorageOperation, args: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(args)) storableText(operation, name, value);
}

export function positiveInt(operation: StorageOperation, name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw invalid(operation, `${name} must be a positive integer (got ${String(value)})`);
  }
}

export function validDate(operation: StorageOperation, name: string, value: unknown): void {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw invalid(operation, `${name} must be a valid Date`);
  const ms = value.getTime();
  if (ms < MIN_STORED_INSTANT_MS || ms > MAX_STORED_INSTANT_MS) {
    throw invalid(operation, `${name} must be between 0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z`);
  }
}


/**
 * Refuses a JSON value holding text PostgreSQL cannot store (a NUL character or an unpaired
 * UTF-16 surrogate, in a string or a key) with a StorageError naming `name`, before any SQL,
 * on both databases (iterative: no recursion on caller data).
 */
export function storableJson(operation: StorageOperation, name: string, value: unknown): void {
  const stack: unknown[] = [value];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const node = stack.pop();
    if (typeof node === 'string') {
      if (!isStorableText(node)) throw unstorable(operation, name);
      continue;
    }
    if (node === null || typeof node !== 'object' || seen.has(node)) continue;
    seen.add(node);
    if (Array.isArray(node)) {
      for (const child of node) stack.push(child);
      continue;
    }
    for (const [key, child] of Object.entries(node)) {
      if (!isStorableText(key)) throw unstorable(operation, name);
      stack.push(child);
    }
  }
}

function unstorable(operation: StorageOperation, name: string): StorageError {
  return invalid(operation, `${name} holds a NUL character or an unpaired UTF-16 surrogate, which storage refuses`);
}

/** The contract's rule for recorded error text (re-exported for the repositories). */
export { wellFormedText };

export function claimOptions(operation: StorageOperation, options: { owner: unknown; ttlMs: unknown }): void {
  nonEmpty(operation, 'owner', options.owner);
  positiveInt(operation, 'ttlMs', options.ttlMs);
}
