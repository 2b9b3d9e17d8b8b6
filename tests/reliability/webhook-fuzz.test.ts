/**
 * Webhook fuzzing with fast-check: random and mutated Connec! notifications and account
 * webhooks (methods, paths, credentials, content types and encodings, bodies: random bytes,
 * random JSON, mutated valid notifications, huge and deeply nested JSON), sent as raw HTTP
 * over loopback to createMaestrano on PostgreSQL. Properties: never a 5xx for client input,
 * always a JSON answer (or none), and never a state change (every SDK table fingerprinted)
 * when the answer is a 4xx. Bodies over the limit (1 MiB by default, configurable) get 413.
 */
import { createMaestrano, defineConnector, defineEntity, type Maestrano } from '@org/maestrano-sdk';
import { createTestIdp, type TestIdp } from '@org/maestrano-sdk/testing';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postResponse, startLogin } from '../e2e/sso/harness.js';
import { type Served, serve } from './lib/http.js';
import { createDatabase, type PrismaStorage, pgUnavailableReason, prismaStorage, type TestDatabase } from './lib/pg.js';
import { type RawAnswer, type RawRequest, send } from './lib/raw-http.js';
import { report, size } from './lib/report.js';

const unavailable = await pgUnavailableReason();
// CI must run these tests: there a missing PostgreSQL fails the file instead of skipping it.
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);
if (unavailable) console.warn(`[reliability/fuzz] skipped: ${unavailable}`);

const TENANT = 'rel-fuzz';
const API_ID = 'app-rel-fuzz';
const API_KEY = 'rel-fuzz-key';
const GROUPS = ['cld-fz1', 'cld-fz2'];
const USERS = ['usr-fz1', 'usr-fz2'];
const SMALL_LIMIT = 4096;

let idp: TestIdp;
let db: TestDatabase;
let storage: PrismaStorage;
let served: Served;
let small: Served;
let state: Record<string, string>;
const tally = { tried: 0, refused: 0, accepted: 0 };

function basic(id: string, key: string): string {
  return `Basic ${Buffer.from(`${id}:${key}`).toString('base64')}`;
}

function app(maxBodyBytes?: number): Maestrano {
  const contacts = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'inbound',
    toLocal: (p: Record<string, unknown>) => ({ name: typeof p.first_name === 'string' ? p.first_name : '' }),
    local: { create: async () => ({ id: 'never-run' }), update: async () => undefined },
  });
  let n = 0;
  return createMaestrano({
    tenants: [idp.marketplace({ name: TENANT, appHost: served.url, apiId: API_ID, apiKey: API_KEY })],
    storage: storage.storage,
    provisioning: {
      createCompany: () => ({ id: `company-${++n}` }),
      createUser: () => ({ id: `user-${++n}` }),
      cancelCompany: () => {},
      blockUser: () => {},
    },
    onLogin: ({ user }) => Response.json({ userId: user.id }),
    connector: defineConnector({ entities: [contacts] }),
    billing: { cancelRecurringBillsOnGroupDeleted: false },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    ...(maxBodyBytes ? { limits: { maxBodyBytes, maxNotificationBodyBytes: maxBodyBytes } } : {}),
  });
}

let previous = '';
/** Sends one request and checks the properties; returns the answer. */
async function check(r: RawRequest, base = served.url): Promise<RawAnswer> {
  tally.tried++;
  const res = await send(base, r);
  const where = `${r.method} ${r.path} -> ${res.status} ${res.text.slice(0, 200)}${res.status >= 500 ? ` body: ${r.body?.toString('utf8').slice(0, 300)}` : ''}`;
  expect(res.status, where).toBeLessThan(500);
  expect(res.status, where).toBeGreaterThanOrEqual(200);
  if (res.text.length > 0 && r.method !== 'HEAD') expect(() => JSON.parse(res.text), where).not.toThrow();
  const after = await db.fingerprint();
  if (process.env.RELIABILITY_DEBUG && after['maestrano_locks'] !== state['maestrano_locks']) {
    console.warn('[fuzz] locks changed', where, 'previous:', previous, JSON.stringify(await db.sql('SELECT * FROM maestrano_locks')));
  }
  if (process.env.RELIABILITY_DEBUG && r.path.includes('/groups/5/')) console.warn('[fuzz] g5', where, JSON.stringify(r.headers), r.body?.byteLength, r.chunked);
  previous = `${where} ${JSON.stringify(r.headers)} body=${r.body?.byteLength ?? 0} chunked=${r.chunked}`;
  if (res.status >= 400) {
    expect(after, `state changed on ${where}`).toEqual(state);
    tally.refused++;
  } else {
    tally.accepted++;
  }
  state = after;
  return res;
}

// --- arbitraries --------------------------------------------------------------------------
const segment = fc.oneof(
  fc.constantFrom('cld-fz1', 'cld-fz2', 'usr-fz1', 'cld-unknown', '', '..', '%00', '%E0%A4%A', '%2F', 'a'.repeat(3000), encodeURIComponent('🙂'), 'null'),
  fc.string({ maxLength: 40 }).map((s) => encodeURIComponent(s)),
);
const tenantSegment = fc.constantFrom(TENANT, TENANT, TENANT, 'other-tenant', encodeURIComponent(`${TENANT} `), TENANT.toUpperCase());
const path = fc.oneof(
  tenantSegment.map((t) => `/maestrano/connec/notifications/${t}`),
  fc.tuple(segment, tenantSegment).map(([id, t]) => `/maestrano/account/groups/${id}/${t}`),
  fc.tuple(segment, segment, tenantSegment).map(([g, u, t]) => `/maestrano/account/groups/${g}/users/${u}/${t}`),
  tenantSegment.map((t) => `/maestrano/metadata/${t}`),
  tenantSegment.map((t) => `/maestrano/auth/saml/consume/${t}`),
  fc.array(segment, { maxLength: 6 }).map((s) => `/${s.join('/')}`),
);
const auth = fc.oneof(
  fc.constant(basic(API_ID, API_KEY)),
  fc.constant(basic(API_ID, `${API_KEY}x`)),
  fc.constant(basic('app-other', API_KEY)),
  fc.constant(basic(API_ID, '')),
  fc.constant(`Basic ${Buffer.from(API_ID).toString('base64')}`),
  fc.constant('Basic !!!not-base64!!!'),
  fc.constant('Bearer token'),
  fc.string({ maxLength: 60 }).map((s) => `Basic ${Buffer.from(s).toString('base64')}`),
  fc.string({ maxLength: 30 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
);
const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  '',
);
const contentEncoding = fc.constantFrom(undefined, 'gzip', 'br', 'deflate', 'identity', 'x-garbage');

const idEntry = fc.record({ id: fc.oneof(fc.uuid(), fc.string({ maxLength: 20 })), provider: fc.constantFrom('connec', API_ID, 'other'), realm: fc.constantFrom('org-fz1', 'cld-fz1', '') });
const anyJson = fc.jsonValue({ maxDepth: 4 });
/** A valid notification with some fields replaced by arbitrary JSON. */
const mutatedNotification = fc
  .record(
    {
      collection: fc.oneof(fc.constantFrom('people', 'organizations', 'Persons', 'unknown_things', '__proto__', 'constructor'), fc.string({ maxLength: 12 })),
      id: fc.oneof(fc.array(idEntry, { maxLength: 3 }), anyJson),
      group_id: fc.oneof(fc.constantFrom('cld-fz1', 'cld-fz2', 'cld-unknown'), anyJson),
      first_name: fc.oneof(fc.string(), anyJson),
      extra: anyJson,
      records: fc.integer({ min: 0, max: 30 }),
      wrapAsArray: fc.boolean(),
    },
    { requiredKeys: ['collection', 'records'] },
  )
  .map((m) => {
    const record: Record<string, unknown> = {};
    if ('id' in m) record.id = m.id;
    if ('group_id' in m) record.group_id = m.group_id;
    if ('first_name' in m) record.first_name = m.first_name;
    if ('extra' in m) record.extra = m.extra;
    const records = Array.from({ length: m.records }, () => record);
    const body = { [m.collection]: m.wrapAsArray ? records : records[0] ?? null };
    return Buffer.from(JSON.stringify(body));
  });
const body = fc.oneof(
  fc.constant(undefined),
  fc.string({ maxLength: 300 }).map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 500 }).map((b) => Buffer.from(b)),
  anyJson.map((j) => Buffer.from(JSON.stringify(j))),
  mutatedNotification,
  mutatedNotification.map((b) => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b])),
  mutatedNotification.map((b) => Buffer.from(b.toString('utf8'), 'utf16le')),
  fc.integer({ min: 1, max: 120_000 }).map((d) => Buffer.from(`${'['.repeat(d)}${']'.repeat(d)}`)),
  fc.integer({ min: 1, max: 60_000 }).map((d) => Buffer.from(`{"people":[{"id":"x","group_id":"cld-fz1","n":${'{"a":'.repeat(d)}1${'}'.repeat(d)}}]}`)),
  fc.constant(Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x90, 0x28, 0xbc])),
);
const request: fc.Arbitrary<RawRequest> = fc
  .record({
    method: fc.constantFrom('POST', 'POST', 'DELETE', 'DELETE', 'GET', 'PUT', 'PATCH', 'HEAD', 'OPTIONS', 'FOO'),
    path,
    auth: fc.option(auth, { nil: undefined }),
    contentType: fc.option(contentType, { nil: undefined }),
    contentEncoding,
    body,
    chunked: fc.boolean(),
  })
  .map((r) => {
    const headers: Record<string, string> = {};
    if (r.auth !== undefined) headers.authorization = r.auth;
    if (r.contentType) headers['content-type'] = r.contentType;
    if (r.contentEncoding) headers['content-encoding'] = r.contentEncoding;
    const out: RawRequest = { method: r.method, path: r.path, headers, chunked: r.chunked };
    if (r.body && r.method !== 'GET' && r.method !== 'HEAD') out.body = r.body;
    return out;
  });

describe.skipIf(unavailable !== null)('webhook fuzzing (fast-check, raw HTTP, PostgreSQL storage)', () => {
  beforeAll(async () => {
    idp = createTestIdp();
    db = await createDatabase('fuzz');
    storage = await prismaStorage(db.url);
    served = await serve();
    small = await serve();
    const mno = app();
    served.setHandler(mno.handler);
    small.setHandler(app(SMALL_LIMIT).handler);
    // Some real state to protect: two groups with a user each (real SSO), one stored notification.
    for (let i = 0; i < GROUPS.length; i++) {
      const acs = `${served.url}/maestrano/auth/saml/consume/${TENANT}`;
      const started = await startLogin(`${served.url}/maestrano/auth/saml/init/${TENANT}?group_id=${GROUPS[i]}`);
      const request = idp.parseAuthnRequest(started.location);
      const samlResponse = idp.response({ uid: USERS[i]!, email: `${USERS[i]}@fz.example`, groupUid: GROUPS[i]! }, { acsUrl: acs, inResponseTo: request.id });
      expect((await postResponse(acs, samlResponse, started.cookie)).status).toBe(200);
    }
    state = await db.fingerprint();
  });
  afterAll(async () => {
    report({ area: 'fuzz', name: 'webhook fuzzing', casesTried: tally.tried, refusedCorrectly: tally.refused, acceptedCorrectly: tally.accepted });
    await served?.close();
    await small?.close();
    await storage?.close();
    await db?.drop();
  });

  it('random requests on every route: never a 5xx, never a state change on a 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        await check(r);
      }),
      { numRuns: size(250, 3000), seed: Number(process.env.RELIABILITY_SEED ?? 20261128) },
    );
  });

  it('mutated notifications with valid credentials: never a 5xx, never a state change on a 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(mutatedNotification, fc.option(contentType, { nil: undefined }), async (b, type) => {
        await check({ method: 'POST', path: `/maestrano/connec/notifications/${TENANT}`, headers: { authorization: basic(API_ID, API_KEY), ...(type ? { 'content-type': type } : {}) }, body: b });
      }),
      { numRuns: size(150, 2000), seed: Number(process.env.RELIABILITY_SEED ?? 20261128) + 1 },
    );
  });

  it('account webhooks with arbitrary ids and credentials: never a 5xx, never a state change on a 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(segment, segment, fc.option(auth, { nil: undefined }), fc.boolean(), async (g, u, a, userRoute) => {
        // Known groups are only hit with bad credentials (a valid delete is a legitimate change).
        const headers: Record<string, string> = {};
        if (a !== undefined) headers.authorization = a === basic(API_ID, API_KEY) ? basic(API_ID, 'nope') : a;
        const path = userRoute ? `/maestrano/account/groups/${g}/users/${u}/${TENANT}` : `/maestrano/account/groups/${g}/${TENANT}`;
        const res = await check({ method: 'DELETE', path, headers });
        expect(res.status).not.toBe(200);
      }),
      { numRuns: size(100, 1000), seed: Number(process.env.RELIABILITY_SEED ?? 20261128) + 2 },
    );
  });

  it('the deepest nesting that fits in 1 MiB, in a record field and as the body, answers a 4xx or a 2xx, never a 5xx', async () => {
    const d = 260_000;
    await check({ method: 'POST', path: `/maestrano/connec/notifications/${TENANT}`, headers: { authorization: basic(API_ID, API_KEY), 'content-type': 'application/json' }, body: Buffer.from(`${'['.repeat(d)}${']'.repeat(d)}`) });
    const inner = 100_000;
    const deepRecord = `{"people":[{"id":"deep-1","group_id":"cld-fz1","first_name":"Deep","n":${'['.repeat(inner)}${']'.repeat(inner)}}]}`;
    await check({ method: 'POST', path: `/maestrano/connec/notifications/${TENANT}`, headers: { authorization: basic(API_ID, API_KEY), 'content-type': 'application/json' }, body: Buffer.from(deepRecord) });
  });

  it('413 over the body limits (16 MiB for notifications, 1 MiB elsewhere by default): declared or chunked; nothing stored', async () => {
    const limit = 1024 * 1024;
    const notificationLimit = 16 * limit;
    const notification = (bytes: number) => {
      const head = '{"people":[{"id":"big-1","group_id":"cld-fz1","first_name":"';
      const tail = '"}]}';
      return Buffer.from(head + 'x'.repeat(bytes - head.length - tail.length) + tail);
    };
    const headers = { authorization: basic(API_ID, API_KEY), 'content-type': 'application/json' };
    const path = `/maestrano/connec/notifications/${TENANT}`;
    for (const chunked of [false, true]) {
      const over = await check({ method: 'POST', path, headers, body: notification(notificationLimit + 1), chunked });
      expect({ status: over.status, body: JSON.parse(over.text) }).toMatchObject({ status: 413, body: { error: 'payload_too_large' } });
      const huge = await check({ method: 'POST', path, headers, body: notification(2 * notificationLimit), chunked });
      expect(huge.status).toBe(413);
    }
    const atLimit = await check({ method: 'POST', path, headers, body: notification(notificationLimit) });
    expect(atLimit.status).not.toBe(413);
    // Over the other routes' limit: still read by the notification route.
    expect((await check({ method: 'POST', path, headers, body: notification(limit + 1) })).status).not.toBe(413);
    for (const route of [`/maestrano/account/groups/cld-fz1/${TENANT}`, `/maestrano/auth/saml/consume/${TENANT}`]) {
      for (const chunked of [false, true]) {
        const res = await check({ method: route.includes('saml') ? 'POST' : 'DELETE', path: route, headers, body: notification(limit + 1), chunked });
        expect(res.status).toBe(413);
      }
    }
  });

  it('413 honours a configured limit (4 KiB): 4097 bytes refused, 4096 read', async () => {
    const headers = { authorization: basic(API_ID, API_KEY), 'content-type': 'application/json' };
    const path = `/maestrano/connec/notifications/${TENANT}`;
    const over = await check({ method: 'POST', path, headers, body: Buffer.alloc(SMALL_LIMIT + 1, 0x20) }, small.url);
    expect(over.status).toBe(413);
    const at = await check({ method: 'POST', path, headers, body: Buffer.alloc(SMALL_LIMIT, 0x20) }, small.url);
    expect(at.status).toBe(400);
  });

  it('NUL and other control characters in notification values and ids: never a 5xx', async () => {
    const headers = { authorization: basic(API_ID, API_KEY), 'content-type': 'application/json' };
    const path = `/maestrano/connec/notifications/${TENANT}`;
    for (const value of ['\u0000', 'a\u0000b', '\u0001\u001f', '\ud800']) {
      await check({ method: 'POST', path, headers, body: Buffer.from(JSON.stringify({ people: [{ id: [{ id: `nul-${value.length}`, provider: 'connec', realm: 'org-fz1' }], group_id: 'cld-fz1', first_name: value }] })) });
      await check({ method: 'POST', path, headers, body: Buffer.from(JSON.stringify({ people: [{ id: [{ id: `x${value}`, provider: 'connec', realm: 'org-fz1' }], group_id: `cld-fz1${value}`, first_name: 'n' }] })) });
    }
  });

  it('ids too long to key storage by (over the 2,704-byte index rows of PostgreSQL): refused alone (400 when alone, the valid record beside it stored), never a 503 Connec! retries forever', async () => {
    const headers = { authorization: basic(API_ID, API_KEY), 'content-type': 'application/json' };
    const path = `/maestrano/connec/notifications/${TENANT}`;
    const long = 'L'.repeat(3000);
    const fine = { id: [{ id: 'p-long-0', provider: 'connec', realm: 'org-fz1' }], group_id: 'cld-fz1', first_name: 'n' };
    for (const bad of [
      { ...fine, id: [{ id: long, provider: 'connec', realm: 'org-fz1' }] },
      { ...fine, group_id: long },
    ]) {
      const alone = await check({ method: 'POST', path, headers, body: Buffer.from(JSON.stringify({ people: [bad] })) });
      expect(alone.status).toBe(400);
      const beside = await check({ method: 'POST', path, headers, body: Buffer.from(JSON.stringify({ people: [fine, bad] })) });
      expect(beside.status).toBe(200);
      expect(JSON.parse(beside.text)).toMatchObject({ received: 2, invalid: 1, issues: [{ message: expect.stringContaining('longer than 255') }] });
    }
  });

  it('control: a valid notification is stored (the fuzzed route really writes when it should)', async () => {
    const validJob = () =>
      db.sql<{ n: number; group_id: string | null; first_name: string | null }>(
        `SELECT count(*)::int AS n, min(group_id) AS group_id, min(payload->'record'->>'first_name') AS first_name
           FROM maestrano_jobs
          WHERE type = 'connec.record' AND tenant = $1 AND payload->>'entity' = 'contacts' AND payload->'record'->'id' @> '[{"id":"p-valid-1"}]'`,
        [TENANT],
      );
    expect(await validJob()).toEqual([{ n: 0, group_id: null, first_name: null }]);
    const body = Buffer.from(JSON.stringify({ people: [{ id: [{ id: 'p-valid-1', provider: 'connec', realm: 'org-fz1' }], group_id: 'cld-fz1', first_name: 'Valid' }] }));
    const res = await check({ method: 'POST', path: `/maestrano/connec/notifications/${TENANT}`, headers: { authorization: basic(API_ID, API_KEY), 'content-type': 'application/json' }, body });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toMatchObject({ stored: 1 });
    // Exactly one job for this record, in its group, carrying the value sent.
    expect(await validJob()).toEqual([{ n: 1, group_id: 'cld-fz1', first_name: 'Valid' }]);
  });
});
