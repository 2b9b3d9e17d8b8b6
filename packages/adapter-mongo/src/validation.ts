/**
 * Argument checks run before any I/O, so bad input changes nothing. They throw
 * `InvalidArgumentError`, which `toStorageError` turns into a `StorageError` (never a
 * conflict) carrying the message. Messages name the argument, never stored values.
 */
export class InvalidArgumentError extends Error {
  override readonly name = 'InvalidArgumentError';
}

export function checkNonEmpty(name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) throw new InvalidArgumentError(`${name} must be a non-empty string`);
}

export function checkPositiveInt(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(`${name} must be a positive integer (got ${typeof value === 'number' ? value : typeof value})`);
  }
}

export function checkDate(name: string, value: unknown): asserts value is Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new InvalidArgumentError(`${name} must be a valid Date`);
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
