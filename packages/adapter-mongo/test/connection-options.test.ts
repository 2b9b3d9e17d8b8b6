/**
 * `mongoAdapter`'s first argument is checked before a client is opened: a misspelt key of the
 * `{ url }` object (`dbname`) would otherwise select another database (the URL's, or
 * `maestrano`) without a word. No server is needed: nothing connects before the first operation.
 */
import { ConfigError } from '@org/maestrano-sdk';
import { MongoClient } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { mongoAdapter } from '../src/index.js';

const URL = 'mongodb://127.0.0.1:1/from-url';

function refusal(source: unknown): ConfigError {
  try {
    mongoAdapter(source as never);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('mongoAdapter accepted the source');
}

describe('mongoAdapter: the connection object', () => {
  it('selects dbName, else the database of the URL, else maestrano', async () => {
    for (const [source, name] of [
      [{ url: URL, dbName: 'app' }, 'app'],
      [{ url: URL }, 'from-url'],
      [{ url: 'mongodb://127.0.0.1:1' }, 'maestrano'],
    ] as const) {
      const adapter = mongoAdapter(source);
      expect(adapter.db.databaseName).toBe(name);
      await adapter.close();
    }
  });

  it('refuses an unknown key, naming it and the keys it takes', () => {
    const error = refusal({ url: URL, dbname: 'app' });
    expect(error.message).toBe('mongoAdapter: the first argument has unknown key "dbname" (expected url, dbName, clientOptions)');
    expect(error.issues).toEqual([{ path: 'source', message: 'has unknown key "dbname" (expected url, dbName, clientOptions)' }]);
    expect(refusal({ url: URL, dbname: 'app', poolSize: 5 }).message).toContain('unknown keys "dbname", "poolSize"');
  });

  it('refuses a dbName that is not a non-empty string', () => {
    expect(refusal({ url: URL, dbName: '' }).message).toBe('mongoAdapter: the first argument has a dbName that is not a non-empty string');
    expect(refusal({ url: URL, dbName: 42 }).message).toContain('dbName that is not a non-empty string');
  });

  it('still says what to pass for a string or a MongoClient', () => {
    expect(refusal(URL).message).toContain('got a string');
    expect(refusal(new MongoClient(URL)).message).toContain('got a MongoClient');
  });
});
