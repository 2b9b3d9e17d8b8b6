import { isStorableText, MAX_STORED_INSTANT_MS, MIN_STORED_INSTANT_MS } from '@org/maestrano-sdk';

/**
 * Argument checks run before any I/O, so bad input changes nothing. They throw
 * `InvalidArgumentError`, which `toStorageError` turns into a `StorageError` (never a
 * conflict) carrying the message. Messages name the argument, never stored values.
 */
export class InvalidArgumentError extends Error {
  override readonly name = 'InvalidArgumentError';
}

/**
 * A non-empty text argument the adapter stores or looks up (an id, a key, an owner, a worker, a
 * type): it must also be storable text (see `checkStorableText`).
 */
export function checkNonEmpty(name: string, value: unknown): asserts value is string {
  checkNonEmptyString(name, value);
  checkStorableText(name, value);
}

/** A non-empty string, whatever it holds (free diagnostic text, recorded well-formed). */
export function checkNonEmptyString(name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) throw new InvalidArgumentError(`${name} must be a non-empty string`);
}

/**
 * Refuses a text argument holding a NUL character or an unpaired UTF-16 surrogate, as JSON
 * holding one is refused, so every adapter agrees: BSON stores strings as UTF-8, where an
 * unpaired surrogate becomes U+FFFD (two different ids would collide), and PostgreSQL refuses
 * both. `null` and `undefined` pass. One linear scan of the string.
 */
export function checkStorableText(name: string, value: unknown): void {
  if (typeof value === 'string' && !isStorableText(value)) {
    throw new InvalidArgumentError(`${name} holds a NUL character or an unpaired UTF-16 surrogate, which storage refuses`);
  }
}

/**
 * The text arguments an operation looks documents up by (or addresses one by), by name: each
 * must be storable text, as when it is stored, so a lookup never finds a document stored under
 * a different text (and every adapter answers alike: PostgreSQL would read an unpaired
 * surrogate as U+FFFD). Checked before any I/O.
 */
export function checkLookup(args: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(args)) checkStorableText(name, value);
}

export function checkPositiveInt(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(`${name} must be a positive integer (got ${typeof value === 'number' ? value : typeof value})`);
  }
}


export function checkDate(name: string, value: unknown): asserts value is Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new InvalidArgumentError(`${name} must be a valid Date`);
  const ms = value.getTime();
  if (ms < MIN_STORED_INSTANT_MS || ms > MAX_STORED_INSTANT_MS) {
    throw new InvalidArgumentError(`${name} must be between 0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z`);
  }
}

/** `now` + `ms` for a computed expiry (lease, claim, lock), capped at the last storable instant. */
export function expiryAfter(now: Date, ms: number): Date {
  return new Date(Math.min(now.getTime() + ms, MAX_STORED_INSTANT_MS));
}

export function checkOptionalDate(name: string, value: unknown): void {
  if (value !== null && value !== undefined) checkDate(name, value);
}

export function checkClaimOptions(options: { owner: unknown; ttlMs: unknown }): void {
  checkNonEmpty('owner', options.owner);
  checkPositiveInt('ttlMs', options.ttlMs);
}

export function checkDefined(name: string, value: unknown): void {
  if (value === undefined) throw new InvalidArgumentError(`${name} is required (use null for none)`);
}

export function checkOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): asserts value is T {
  if (!allowed.some((candidate) => candidate === value)) {
    throw new InvalidArgumentError(`${name} must be one of ${allowed.join(', ')}`);
  }
}

export function checkArray(name: string, value: unknown): asserts value is unknown[] {
  if (!Array.isArray(value)) throw new InvalidArgumentError(`${name} must be an array`);
}
