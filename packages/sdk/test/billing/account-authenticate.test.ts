// users.authenticate input checks and the password encryption (PROTOCOL §4.6); the check
// itself runs against the sandbox in tests/e2e/billing.
import { createDecipheriv } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAccountClient } from '../../src/account/index.js';
import { encryptPassword } from '../../src/account/password.js';
import { ConfigError, PayloadValidationError } from '../../src/errors/index.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';

const KEY = 'k'.repeat(20) + 'abcdefghijkl' + 'tail-ignored';

function decrypt(sent: string, apiKey: string): string {
  const [iv, data] = sent.split('--');
  const decipher = createDecipheriv('aes-256-cbc', Buffer.from(apiKey).subarray(0, 32), Buffer.from(iv ?? '', 'base64'));
  return Buffer.concat([decipher.update(Buffer.from(data ?? '', 'base64')), decipher.final()]).toString('utf8');
}

describe('encryptPassword', () => {
  it('is base64(IV)--base64(AES-256-CBC ciphertext) under the first 32 bytes of the key, with a new IV each time', () => {
    const a = encryptPassword('s3cret é🔑', KEY);
    const b = encryptPassword('s3cret é🔑', KEY);
    expect(a).toMatch(/^[A-Za-z0-9+/]{22}==--[A-Za-z0-9+/=]+$/);
    expect(a).not.toBe(b);
    expect(decrypt(a, KEY)).toBe('s3cret é🔑');
    expect(decrypt(b, `${KEY.slice(0, 32)}other-tail`)).toBe('s3cret é🔑');
    // Under another key the plaintext is not recovered. Not `toThrow()`: CBC decryption under a
    // wrong key ends in valid PKCS#7 padding about 1 time in 256 (a last byte of 0x01), and
    // then returns garbage instead of throwing.
    const wrongKey = (): string | null => {
      try {
        return decrypt(a, `x${KEY}`);
      } catch {
        return null;
      }
    };
    expect(wrongKey()).not.toBe('s3cret é🔑');
  });

  it('refuses a key under 32 bytes with a ConfigError that does not show it', () => {
    const short = 'short-api-key-0123456789';
    const error = (() => {
      try {
        encryptPassword('pw', short);
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain('24 bytes');
    expect((error as ConfigError).message).not.toContain(short);
  });
});

describe('users.authenticate input', () => {
  let api: AccountApiServer;
  beforeAll(async () => {
    api = await startAccountApiServer();
  });
  afterAll(async () => {
    await api.close();
  });
  beforeEach(() => {
    api.requests.length = 0;
  });

  it('refuses a missing or doubled identity and an empty password without sending anything', async () => {
    const client = createAccountClient({ api: { id: api.apiId, key: KEY, host: api.url, base: '/api/v1/' } });
    const bad: unknown[] = [
      { password: 'pw' },
      { email: '  ', password: 'pw' },
      { id: 'usr-1', email: 'a@b.c', password: 'pw' },
      { email: 'a@b.c', password: '' },
      { email: 'a@b.c' },
      null,
    ];
    for (const input of bad) {
      await expect(client.users.authenticate(input as never)).rejects.toBeInstanceOf(PayloadValidationError);
    }
    const short = createAccountClient({ api: { id: api.apiId, key: 'short', host: api.url, base: '/api/v1/' } });
    await expect(short.users.authenticate({ email: 'a@b.c', password: 'pw' })).rejects.toBeInstanceOf(ConfigError);
    expect(api.requests).toEqual([]);
  });
});
