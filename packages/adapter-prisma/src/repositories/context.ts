import { StorageConflictError, StorageError, type StorageOperation } from '@org/maestrano-sdk';
import type { Executor } from '../client.js';
import { ADAPTER_ID } from '../errors.js';

export interface RepositoryContext {
  db: Executor;
  /** The adapter clock (`StorageOptions.clock`). */
  now(): Date;
}

export function plus(date: Date, ms: number): Date {
  return new Date(date.getTime() + ms);
}

export function conflict(operation: StorageOperation, message: string): StorageConflictError {
  return new StorageConflictError(`${operation}: ${message}`, { adapterId: ADAPTER_ID, operation });
}

export function invalid(operation: StorageOperation, message: string): StorageError {
  return new StorageError(`${operation}: ${message}`, { adapterId: ADAPTER_ID, operation });
}

/** Atomic steps that race with other writers are retried a few times before giving up. */
export const RACE_RETRIES = 8;

export function raceLost(operation: StorageOperation): StorageError {
  return new StorageError(`${operation}: the record kept changing under concurrent writers; try again`, {
    adapterId: ADAPTER_ID,
    operation,
  });
}

export function assertTtl(operation: StorageOperation, ttlMs: number): void {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw invalid(operation, `ttlMs must be a positive number (got ${ttlMs})`);
}
