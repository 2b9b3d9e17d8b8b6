import { StorageConflictError, StorageError, type StorageOperation } from '@org/maestrano-sdk';
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

export function nonEmpty(operation: StorageOperation, name: string, value: unknown): void {
  if (typeof value !== 'string' || value.length === 0) throw invalid(operation, `${name} must be a non-empty string`);
}

export function positiveInt(operation: StorageOperation, name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw invalid(operation, `${name} must be a positive integer (got ${String(value)})`);
  }
}

export function validDate(operation: StorageOperation, name: string, value: unknown): void {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw invalid(operation, `${name} must be a valid Date`);
}

export function claimOptions(operation: StorageOperation, options: { owner: unknown; ttlMs: unknown }): void {
  nonEmpty(operation, 'owner', options.owner);
  positiveInt(operation, 'ttlMs', options.ttlMs);
}
