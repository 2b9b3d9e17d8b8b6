import { MongoServerError } from 'mongodb';
import { StorageConflictError, StorageError } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { duplicateOnId, isDuplicateKeyError, toStorageError } from './errors.js';

describe('toStorageError', () => {
  it('maps E11000 to StorageConflictError naming the operation, keeping the cause', () => {
    const driver = new MongoServerError({ code: 11000, errmsg: 'E11000 duplicate key error collection: x.y' });
    const err = toStorageError('idMaps.insert', driver);
    expect(err).toBeInstanceOf(StorageConflictError);
    expect(err.code).toBe('storage_conflict');
    expect(err.adapterId).toBe('mongo');
    expect(err.operation).toBe('idMaps.insert');
    expect(err.cause).toBe(driver);
  });

  it("maps FerretDB's UNIQUE constraint InternalError (updates) to StorageConflictError", () => {
    const driver = new MongoServerError({ code: 1, errmsg: 'constraint failed: UNIQUE constraint failed: index x (2067)' });
    expect(isDuplicateKeyError(driver)).toBe(true);
    expect(toStorageError('idMaps.update', driver)).toBeInstanceOf(StorageConflictError);
  });

  it('maps any other failure to a plain StorageError without echoing the driver message', () => {
    const driver = new MongoServerError({ code: 13, errmsg: 'not authorized on db with password=hunter2' });
    const err = toStorageError('jobs.claim', driver);
    expect(err).toBeInstanceOf(StorageError);
    expect(err).not.toBeInstanceOf(StorageConflictError);
    expect(err.code).toBe('storage_error');
    expect(err.operation).toBe('jobs.claim');
    expect(err.message).toBe('mongo jobs.claim failed (MongoServerError)');
    expect(err.message).not.toContain('hunter2');
    expect(err.cause).toBe(driver);
    expect(isDuplicateKeyError(new Error('UNIQUE constraint failed'))).toBe(false);
  });

  it('passes StorageErrors through unchanged', () => {
    const original = new StorageConflictError('x', { adapterId: 'mongo', operation: 'groups.complete' });
    expect(toStorageError('groups.claim', original)).toBe(original);
  });
});

describe('duplicateOnId', () => {
  it('reads the violated index from keyPattern or the message, and is undefined when the server names none', () => {
    const onId = { code: 11000, errmsg: 'E11000 duplicate key error collection: x.y index: _id_ dup key: { _id: "k" }' };
    expect(duplicateOnId(new MongoServerError({ ...onId, keyPattern: { _id: 1 } }))).toBe(true);
    expect(duplicateOnId(new MongoServerError({ code: 11000, keyPattern: { dedupeSlot: 1 } }))).toBe(false);
    expect(duplicateOnId(new MongoServerError(onId))).toBe(true);
    const other = { code: 11000, errmsg: 'E11000 duplicate key error collection: x.y index: dedupe_unique dup key: { dedupeSlot: "v:a" }' };
    expect(duplicateOnId(new MongoServerError(other))).toBe(false);
    // FerretDB 1.24
    expect(duplicateOnId(new MongoServerError({ code: 11000, errmsg: 'E11000 duplicate key error collection: x.y' }))).toBeUndefined();
  });
});
