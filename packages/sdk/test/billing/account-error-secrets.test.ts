// No secrets in errors: the client never exposes a user's `sso_session` (a live session
// token), and an answer that fails its schema in another field must not put it on the thrown
// error's `body` either (apps print and report errors whole).
import { inspect } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createAccountClient } from '../../src/account/index.js';
import { ResponseValidationError } from '../../src/errors/index.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';

let api: AccountApiServer;
beforeAll(async () => {
  api = await startAccountApiServer();
});
afterAll(async () => {
  await api.close();
});

it('a users list with one malformed field does not carry the users\' sso_session tokens in the error', async () => {
  api.addGroup('cld-1');
  api.addUser('usr-1', ['cld-1'], { sso_session: 'live-session-token-of-usr-1' });
  api.addUser('usr-2', ['cld-1'], { sso_session: 'live-session-token-of-usr-2', created_at: 'yesterday' });
  const client = createAccountClient({ api: { id: api.apiId, key: api.apiKey, host: api.url, base: '/api/v1/' } });
  const error = await client.users.list({ groupId: 'cld-1' }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ResponseValidationError);
  // What an app's `logger.error({ err })` / console.error(err) prints, and what an error tracker serialises.
  expect(inspect(error, { depth: 10 })).not.toContain('live-session-token');
  expect(JSON.stringify((error as ResponseValidationError).body)).not.toContain('live-session-token');
  // The rest of the answer stays, for diagnosis.
  expect(JSON.stringify((error as ResponseValidationError).body)).toContain('yesterday');
});
