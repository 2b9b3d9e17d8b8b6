import { expect } from 'vitest';
import { StorageConflictError, StorageError } from '../../../errors/index.js';
import type { IdMapScope, StorageAdapter } from '../../../storage/adapter.js';
import type { StorageAbility, StorageCase, StorageCaseContext, StorageCaseFn } from '../types.js';

export const TENANT = 'tenant-a';
export const OTHER_TENANT = 'tenant-b';
export const GROUP = 'cld-1001';
export const OTHER_GROUP = 'cld-1002';
export const SCOPE: IdMapScope = { tenant: TENANT, groupId: GROUP, entity: 'contact' };

/** A case that needs abilities the backend may lack. */
export function needs(abilities: StorageAbility[], run: StorageCaseFn): StorageCase {
  return { needs: abilities, run };
}

/** Runs `count` callers at once, spread over the main adapter and its peers. */
export function race<T>(
  context: StorageCaseContext,
  count: number,
  fn: (adapter: StorageAdapter, index: number) => Promise<T>,
): Promise<T[]> {
  const { racers } = context;
  return Promise.all(
    Array.from({ length: count }, (_, index) => {
      const adapter = racers[index % racers.length] ?? context.adapter;
      return fn(adapter, index);
    }),
  );
}

export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the operation to be rejected, but it resolved');
}

/** The promise rejects with a `StorageConflictError` naming `operation`. */
export async function expectConflict(promise: Promise<unknown>, operation: string): Promise<void> {
  const error = await rejection(promise);
  expect(error).toBeInstanceOf(StorageConflictError);
  expect(error).toMatchObject({ code: 'storage_conflict', operation });
}

/** The promise rejects with a plain `StorageError` (not a conflict) naming `operation`. */
export async function expectStorageError(promise: Promise<unknown>, operation: string): Promise<void> {
  const error = await rejection(promise);
  expect(error).toBeInstanceOf(StorageError);
  expect(error).not.toBeInstanceOf(StorageConflictError);
  expect(error).toMatchObject({ code: 'storage_error', operation });
}

/** A stored or returned timestamp: a real `Date` (not a string or number), optionally at `at`. */
export function expectDate(value: unknown, at?: Date | number): void {
  expect(value).toBeInstanceOf(Date);
  if (value instanceof Date) {
    expect(Number.isNaN(value.getTime())).toBe(false);
    if (at !== undefined) expect(value.getTime()).toBe(typeof at === 'number' ? at : at.getTime());
  }
}

export function ms(value: unknown): number {
  if (!(value instanceof Date)) throw new Error(`expected a Date, got ${typeof value}`);
  return value.getTime();
}

export function sorted<T>(values: T[], by: (value: T) => string): T[] {
  return [...values].sort((a, b) => (by(a) < by(b) ? -1 : by(a) > by(b) ? 1 : 0));
}

/** The instant `offset` ms from the suite clock's current time. */
export function inMs(clock: { ms(): number }, offset: number): Date {
  return new Date(clock.ms() + offset);
}
