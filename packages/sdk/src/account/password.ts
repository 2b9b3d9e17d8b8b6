/**
 * The password encryption of Maestrano's password check (PROTOCOL §4.6): AES-256-CBC with
 * PKCS#7 padding, the key being the first 32 bytes of the tenant's `api.key`, a random IV,
 * sent as `base64(IV) + "--" + base64(ciphertext)`.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { ConfigError } from '../errors/index.js';

export const PASSWORD_KEY_BYTES = 32;

/** The password as Maestrano's `users/authenticate` expects it. Throws `ConfigError` for a key under 32 bytes. */
export function encryptPassword(password: string, apiKey: string): string {
  const key = Buffer.from(apiKey, 'utf8').subarray(0, PASSWORD_KEY_BYTES);
  if (key.length < PASSWORD_KEY_BYTES) {
    // The key's length only: never the key.
    throw new ConfigError(
      `The tenant's api.key is ${key.length} bytes long: Maestrano's password check encrypts with its first ${PASSWORD_KEY_BYTES} bytes, so it needs at least that many`,
      { issues: [{ path: 'api.key', message: `at least ${PASSWORD_KEY_BYTES} bytes for users.authenticate` }] },
    );
  }
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const data = Buffer.concat([cipher.update(password, 'utf8'), cipher.final()]);
  return `${iv.toString('base64')}--${data.toString('base64')}`;
}
