import { StorageConflictError, StorageError, type StorageOperation } from '@org/maestrano-sdk';
import { InvalidArgumentError } from './validation.js';

export const ADAPTER_ID = 'mongo';

function field(err: unknown, name: string): unknown {
  return typeof err === 'object' && err !== null ? (err as Record<string, unknown>)[name] : undefined;
}

/**
 * True for a unique-index violation: MongoDB's E11000 (and the legacy 11001), and the
 * InternalError FerretDB's SQLite backend answers when an update (not an insert) breaks a
 * unique index (`UNIQUE constraint failed`).
 */
export function isDuplicateKeyError(err: unknown): boolean {
  const code = field(err, 'code');
  if (code === 11000 || code === 11001) return true;
  const message = field(err, 'message');
  return code === 1 && typeof message === 'string' && message.includes('UNIQUE constraint failed');
}

/**
 * For a duplicate-key error: true when the server names the `_id` index as the one
 * violated, false when it names another index, undefined when it names none (FerretDB
 * answers a bare `E11000 duplicate key error collection: …`).
 */
export function duplicateOnId(err: unknown): boolean | undefined {
  const pattern = field(err, 'keyPattern');
  if (typeof pattern === 'object' && pattern !== null) {
    const keys = Object.keys(pattern);
    return keys.length === 1 && keys[0] === '_id';
  }
  const message = field(err, 'message');
  const index = typeof message === 'string' ? / index: (\S+) dup key/.exec(message)?.[1] : undefined;
  return index === undefined ? undefined : index === '_id_';
}

/**
 * The one place driver errors become the SDK's taxonomy: a unique violation becomes
 * `StorageConflictError`, anything else `StorageError`; the driver error is kept as
 * `cause`. A `StorageError` passes through unchanged. Messages name the operation and the
 * driver error's class, never document contents or connection strings.
 */
export function toStorageError(operation: StorageOperation, err: unknown): StorageError {
  if (err instanceof StorageError) return err;
  if (err instanceof InvalidArgumentError) {
    return new StorageError(`mongo ${operation}: ${err.message}`, { adapterId: ADAPTER_ID, operation, cause: err });
  }
  if (isDuplicateKeyError(err)) {
    return new StorageConflictError(`mongo ${operation}: unique constraint violated`, {
      adapterId: ADAPTER_ID,
      operation,
      cause: err,
    });
  }
  const kind = err instanceof Error ? err.name : typeof err;
  return new StorageError(`mongo ${operation} failed (${kind})`, { adapterId: ADAPTER_ID, operation, cause: err });
}

/** A StorageConflictError raised by the adapter itself (lost claim, unique key in use). */
export function conflict(operation: StorageOperation, message: string): StorageConflictError {
  return new StorageConflictError(`mongo ${operation}: ${message}`, { adapterId: ADAPTER_ID, operation });
}

/** A StorageError raised by the adapter itself (e.g. sustained write contention). */
export function storageError(operation: StorageOperation, message: string): StorageError {
  return new StorageError(`mongo ${operation}: ${message}`, { adapterId: ADAPTER_ID, operation });
}
