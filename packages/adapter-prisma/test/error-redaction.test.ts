// A driver message that quotes a connection string or a keyword password reaches the app's
// logs through StorageError's message: user info and passwords are cut out of it, whatever
// characters the password holds.
import { StorageError } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { toStorageError } from '../src/errors.js';

describe('StorageError messages never carry database credentials', () => {
  const cases: Array<[string, string]> = [
    ['plain', 'connect ECONNREFUSED postgresql://app:s3cret@db.example:5432/app'],
    ['an unencoded @ in the password', 'connect ECONNREFUSED postgresql://app:p@ss@db.example:5432/app'],
    ['an unencoded / in the password', 'connect ECONNREFUSED postgresql://app:p@ss/w0rd@db.example:5432/app'],
    ['a password query parameter holding an @', 'connect ECONNREFUSED postgresql://db.example:5432/app?user=app&password=p@ss/w0rd'],
    ['a keyword form', 'could not connect: host=db.example user=app password=p@ss/w0rd dbname=app'],
  ];
  for (const [name, message] of cases) {
    it(name, () => {
      const error = toStorageError('groups.get', new Error(message));
      expect(error).toBeInstanceOf(StorageError);
      expect(error.message).toContain('groups.get');
      for (const secret of ['s3cret', 'p@ss', 'ss@', 'w0rd']) expect(error.message).not.toContain(secret);
      // What is left still says where it failed.
      expect(error.message).toMatch(/db\.example|host=db\.example/);
    });
  }
});
