/**
 * A login that fails after its assertion id was remembered, before its session exists (the
 * database down, a hook or `onLogin` throwing), gives the id back: the browser's re-POST of
 * the same signed response (reload, "try again") logs in. Replay protection stays strict: two
 * concurrent posts of one response give one login, a response that led to a login is refused,
 * and a 403 refusal keeps the id.
 */
import { type LoginArgs, type Logger, memoryAdapter, type StorageAdapter, StorageError, type StorageOperation } from '@org/maestrano-sdk';
import type { TestUser } from '@org/maestrano-sdk/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { proxyStorage } from '../storage-proxy.js';
import { type Harness, startHarness } from './harness.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100' };

/** `memoryAdapter()` whose operations throw a `StorageError` while `isDown(operation)` says so. */
function flakyStorage(isDown: (operation: StorageOperation) => boolean): { adapter: StorageAdapter; inner: StorageAdapter } {
  const inner = memoryAdapter();
  const adapter = proxyStorage(inner, async (operation, call) => {
    if (isDown(operation)) throw new StorageError(`${operation} failed: connection refused`, { adapterId: inner.id, operation });
    return call();
  });
  return { adapter, inner };
}

function recordingLogger(): Logger & { lines: { level: string; message: string; fields: Record<string, unknown> | undefined }[] } {
  const lines: { level: string; message: string; fields: Record<string, unknown> | undefined }[] = [];
  const at =
    (level: string) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push({ level, message, fields });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** The signed response of one SP-initiated login, and the browser cookie it is bound to. */
async function signedResponse(h: Harness): Promise<{ samlResponse: string; cookie: string; assertionId: string }> {
  const started = await h.init(h.tenant, `?group_id=${alice.groupUid}`);
  const assertionId = `_retry-${Math.random().toString(16).slice(2)}`;
  const { samlResponse } = h.idp.respondTo(started.location, alice, { assertionId });
  return { samlResponse, cookie: started.cookie, assertionId };
}

async function expectOneUserAndCompany(h: Harness, inner: StorageAdapter = h.storage): Promise<void> {
  expect(h.app.users.size).toBe(1);
  expect(h.app.companies.size).toBe(1);
  expect(await inner.users.get(h.tenant, alice.uid)).toMatchObject({ uid: alice.uid, status: 'active' });
  expect(await inner.groups.list(h.tenant)).toHaveLength(1);
  expect(h.logins).toHaveLength(1);
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('re-posting a signed response after a failed login', () => {
  it('a hook that throws: the same response posted again logs in once, and is refused after that', async () => {
    h = await startHarness();
    h.app.failures.createUser = 1;
    const { samlResponse, cookie } = await signedResponse(h);

    const first = await h.post(samlResponse, { cookie });
    expect(first.status).toBe(500);
    expect(first.body['error']).toBe('provisioning_failed');
    expect(h.logins).toEqual([]);

    const second = await h.post(samlResponse, { cookie });
    expect(second.status).toBe(200);
    expect(second.body['outcome']).toMatchObject({ userCreated: true });
    await expectOneUserAndCompany(h);

    const third = await h.post(samlResponse, { cookie });
    expect(third.status).toBe(400);
    expect(third.body['error']).toBe('replay');
    expect(h.logins).toHaveLength(1);
  });

  it('storage down while provisioning (503): the same response logs in once the database is back', async () => {
    let down = true;
    const storage = flakyStorage((operation) => down && operation === 'groups.complete');
    h = await startHarness({ storage: storage.adapter });
    const { samlResponse, cookie } = await signedResponse(h);

    const first = await h.post(samlResponse, { cookie });
    expect(first.status).toBe(503);
    expect(first.body['error']).toBe('storage_unavailable');

    down = false;
    const second = await h.post(samlResponse, { cookie });
    expect(second.status).toBe(200);
    await expectOneUserAndCompany(h, storage.inner);
    expect((await h.post(samlResponse, { cookie })).body['error']).toBe('replay');
  });

  it('onLogin that throws: no session, so the same response may log in again', async () => {
    let failLogin = true;
    const logins: LoginArgs[] = [];
    h = await startHarness({
      extraConfig: {
        onLogin: (args: LoginArgs) => {
          if (failLogin) throw new Error('session store unavailable');
          logins.push(args);
          return Response.json({ userId: args.user.id });
        },
      },
    });
    const { samlResponse, cookie } = await signedResponse(h);

    const first = await h.post(samlResponse, { cookie });
    expect(first.status).toBe(500);
    failLogin = false;
    const second = await h.post(samlResponse, { cookie });
    expect(second.status).toBe(200);
    expect(logins).toHaveLength(1);
    expect(h.app.users.size).toBe(1);
    expect(h.app.companies.size).toBe(1);
    expect((await h.post(samlResponse, { cookie })).body['error']).toBe('replay');
  });

  it('when the id cannot be given back either, the user gets the original error and the log says so', async () => {
    let down = true;
    const storage = flakyStorage((operation) => down && (operation.startsWith('users.') || operation === 'replay.forget'));
    const logger = recordingLogger();
    h = await startHarness({ storage: storage.adapter, logger });
    const { samlResponse, cookie, assertionId } = await signedResponse(h);

    const first = await h.post(samlResponse, { cookie });
    expect(first.status).toBe(503);
    expect(first.body).toEqual({ error: 'storage_unavailable', message: 'Sign-in is temporarily unavailable, please try again in a moment' });
    const released = logger.lines.filter((l) => l.message.includes('could not release the SAML assertion id'));
    expect(released).toHaveLength(1);
    expect(released[0]).toMatchObject({ level: 'error', fields: { tenant: h.tenant, assertionId, reason: 'storage_unavailable' } });
    expect(String(released[0]?.fields?.['error'])).toContain('replay.forget');

    // Still remembered: the re-POST is a replay (the user starts again from Maestrano).
    down = false;
    const second = await h.post(samlResponse, { cookie });
    expect(second.status).toBe(400);
    expect(second.body['error']).toBe('replay');
    expect(h.logins).toEqual([]);
  });

  it('a 403 refusal (the group is cancelled) keeps the id: the same response stays refused as a replay', async () => {
    h = await startHarness();
    expect((await h.login(alice)).status).toBe(200);
    await h.storage.groups.cancel(h.tenant, alice.groupUid);
    const { samlResponse, cookie } = await signedResponse(h);

    const first = await h.post(samlResponse, { cookie });
    expect(first.status).toBe(403);
    const second = await h.post(samlResponse, { cookie });
    expect(second.status).toBe(400);
    expect(second.body['error']).toBe('replay');
  });
});

describe('concurrent posts of one signed response', () => {
  it('two posts at once: exactly one provisions and logs in, the other is refused as a replay', async () => {
    h = await startHarness();
    // Widens the window: the winner is still provisioning when the other post arrives.
    h.app.createCompanyDelayMs = 50;
    const { samlResponse, cookie } = await signedResponse(h);

    const answers = await Promise.all([h.post(samlResponse, { cookie }), h.post(samlResponse, { cookie })]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
    expect(answers.find((a) => a.status === 400)?.body['error']).toBe('replay');
    await expectOneUserAndCompany(h);
    expect(h.app.count('createCompany')).toBe(1);
  });

  it('two posts at once while the winner fails: one failure, one replay; the next post logs in once', async () => {
    h = await startHarness();
    h.app.createCompanyDelayMs = 50;
    h.app.failures.createCompany = 1;
    const { samlResponse, cookie } = await signedResponse(h);

    const answers = await Promise.all([h.post(samlResponse, { cookie }), h.post(samlResponse, { cookie })]);
    expect(answers.map((a) => a.status).sort()).toEqual([400, 500]);
    expect(h.logins).toEqual([]);

    h.app.createCompanyDelayMs = 0;
    const retries = await Promise.all([h.post(samlResponse, { cookie }), h.post(samlResponse, { cookie })]);
    expect(retries.map((a) => a.status).sort()).toEqual([200, 400]);
    await expectOneUserAndCompany(h);
  });
});
