/**
 * Seeded mutation fuzzing of every untrusted input the SDK reads, on the memory adapter:
 * raw HTTP/1.1 over loopback (a plain socket: any method token, header bytes, duplicate headers,
 * path bytes) to `toNodeListener(mno.handler)` on every route (Connec! notifications, account
 * webhooks, SAML metadata, SSO init and ACS, the sync control endpoints, unknown paths), and the
 * pure entry points (`parseNotification`, `createMaestrano` / `configFromEnv` with odd values).
 *
 * Properties: never a 5xx (storage is in memory: no outage is possible), never an unhandled
 * rejection, every refusal a JSON body of the documented shape (`{ error, message? }`, the
 * sync control routes' `{ errors: [{ message, code }] }`), a refused request changes nothing
 * in storage (a full dump of the memory store before and after), and no secret (the api key,
 * its Basic header, the request-binding secret) in any answer or log line.
 *
 * Deterministic: the seed is fixed (MNO_FUZZ_SEED overrides it, MNO_FUZZ_RUNS the count) and
 * printed. The slowest request is printed too (not asserted).
 */
import { connect } from 'node:net';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { isMaestranoError, PayloadValidationError, parseNotification } from '@org/connec-client';
import {
  ClientConfigError,
  configFromEnv,
  createMaestrano,
  defineConnector,
  defineEntity,
  type Logger,
  type Maestrano,
  memoryAdapter,
  type StorageAdapter,
  toNodeListener,
} from '@org/maestrano-sdk';
import { createTestIdp, type TestIdp } from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/internal/random.js';
import { memoryState } from '../../src/storage/memory.js';

const SEED = Number(process.env.MNO_FUZZ_SEED ?? 20260611);
const RUNS = Number(process.env.MNO_FUZZ_RUNS ?? 800);
console.log(`[fuzz] seed ${SEED} (MNO_FUZZ_SEED), ${RUNS} HTTP cases (MNO_FUZZ_RUNS)`);

// --- seeded randomness ---------------------------------------------------------------------
let rand = seededRandom(SEED);
const int = (n: number) => Math.floor(rand() * n);
const chance = (p: number) => rand() < p;
const pick = <T,>(items: readonly T[]): T => items[int(items.length)]!;
/** Any generated value as text (`String()` throws for an object whose `toString` was replaced). */
const str = (v: unknown): string => (typeof v === 'string' ? v : (JSON.stringify(v) ?? 'undefined'));

// --- the app -------------------------------------------------------------------------------
const T1 = 'fuzz';
const T2 = 'fz.eu~1';
const API_ID = 'app-fuzz';
const API_KEY = 'fuzz-KEY-must-never-leak-7f3a';
const API_ID2 = 'app-fuzz-2';
const API_KEY2 = 'fuzz-KEY2-must-never-leak-91bc';
const BINDING_SECRET = 'binding-SECRET-must-never-leak-55e1';
const GROUPS = ['cld-fz1', 'cld-fz2'];
const USERS = ['usr-fz1', 'usr-fz2'];
const basic = (id: string, key: string) => `Basic ${Buffer.from(`${id}:${key}`).toString('base64')}`;
const GOOD = basic(API_ID, API_KEY);
const GOOD2 = basic(API_ID2, API_KEY2);
const SECRETS = [API_KEY, API_KEY2, BINDING_SECRET, GOOD.slice(6), GOOD2.slice(6)];

const logs: string[] = [];
const logger: Logger = {
  debug: (m, f) => void logs.push(`debug ${m} ${JSON.stringify(f ?? {})}`),
  info: (m, f) => void logs.push(`info ${m} ${JSON.stringify(f ?? {})}`),
  warn: (m, f) => void logs.push(`warn ${m} ${JSON.stringify(f ?? {})}`),
  error: (m, f) => void logs.push(`error ${m} ${JSON.stringify(f ?? {})}`),
};

let idp: TestIdp;
let storage: StorageAdapter;
let mno: Maestrano;
let server: Server;
let port = 0;
let base = '';
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

function dump(): string {
  const s = memoryState(storage);
  const rows = (m: Map<string, unknown>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify({
    groups: rows(s.groups),
    users: rows(s.users),
    memberships: rows(s.memberships),
    idMaps: s.idMaps,
    cursors: rows(s.cursors),
    jobs: rows(s.jobs),
    ledger: rows(s.ledger),
    replay: rows(s.replay),
    // Storage locks are taken and released by accepted and refused requests alike (a released
    // lock leaves no row); a row left behind by a refusal is a change.
    locks: rows(s.locks),
  });
}

// --- raw HTTP over a socket ----------------------------------------------------------------
interface Raw {
  method: string;
  path: string;
  /** Header lines as [name, value] (duplicates allowed); value bytes as latin1. */
  headers: [string, string][];
  body?: Buffer;
  chunked?: boolean;
}
interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  ms: number;
}

function dechunk(data: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', i);
    if (eol < 0) break;
    const size = Number.parseInt(data.subarray(i, eol).toString('latin1'), 16);
    if (!(size > 0)) break;
    out.push(data.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

function send(r: Raw): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.setTimeout(30_000, () => socket.destroy(new Error(`timeout on ${r.method} ${r.path} ${JSON.stringify(r.headers)} chunked=${r.chunked} body=${r.body?.byteLength}`)));
    socket.on('close', () => {
      const data = Buffer.concat(chunks);
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error(`no answer to ${r.method} ${r.path}: ${JSON.stringify(data.toString('latin1').slice(0, 200))}`));
      const [statusLine, ...lines] = data.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      let body: Buffer = data.subarray(end + 4);
      if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body: body.toString('utf8'), ms: performance.now() - started });
    });
    const head = [`${r.method} ${r.path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Connection: close'];
    for (const [name, value] of r.headers) head.push(`${name}: ${value}`);
    if (r.body && r.chunked) head.push('Transfer-Encoding: chunked');
    else if (r.body) head.push(`Content-Length: ${r.body.byteLength}`);
    socket.write(Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'));
    if (r.body && r.chunked) {
      for (let i = 0; i < r.body.byteLength; i += 4096) {
        const part = r.body.subarray(i, i + 4096);
        socket.write(`${part.byteLength.toString(16)}\r\n`);
        socket.write(part);
        socket.write('\r\n');
      }
      socket.write('0\r\n\r\n');
    } else if (r.body) socket.write(r.body);
  });
}

// --- generators ----------------------------------------------------------------------------
const ODD_STRINGS = [
  '', ' ', '0', '-1', '1e309', 'NaN', 'null', 'true', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty',
  '\u0000', 'a\u0000b', '\ud800', '\u202e', '🙂', 'é', '\r\n', '%00', '../..', '..%2F', 'x'.repeat(300), 'cld-fz1', 'usr-fz1',
  'cld-fz1\u0000', ' cld-fz1', 'CLD-FZ1', '2026-01-01T00:00:00Z', '2026-13-45', '<x/>', '{"a":1}', '[]',
];
function oddValue(depth = 0): unknown {
  switch (int(depth > 2 ? 6 : 10)) {
    case 0: return null;
    case 1: return pick([0, -1, 1.5, 1e308, -0, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER]);
    case 2: return pick([true, false]);
    case 3: return pick(ODD_STRINGS);
    case 4: return String(int(1000));
    case 5: return pick(ODD_STRINGS) + pick(ODD_STRINGS);
    case 6: return Array.from({ length: int(4) }, () => oddValue(depth + 1));
    case 7: return Object.fromEntries(Array.from({ length: int(4) }, () => [pick(ODD_STRINGS), oddValue(depth + 1)]));
    case 8: return JSON.parse('{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}');
    default: return [{ id: pick(ODD_STRINGS), provider: pick(['connec', API_ID, 'x']), realm: pick(['org-fz1', '']) }];
  }
}

/** A valid notification, mutated in some fields (or not). */
function notification(): Buffer {
  const record: Record<string, unknown> = {
    id: [{ id: `p-${int(50)}`, provider: 'connec', realm: 'org-fz1' }],
    group_id: pick(GROUPS),
    first_name: 'Ann',
    last_name: 'Lee',
    updated_at: '2026-01-01T00:00:00Z',
    created_at: '2026-01-01T00:00:00Z',
    email: { address: 'ann@example.com' },
  };
  for (const key of Object.keys(record)) if (chance(0.25)) record[key] = oddValue();
  if (chance(0.2)) record[pick(ODD_STRINGS)] = oddValue();
  if (chance(0.1)) delete record[pick(Object.keys(record))];
  const collection = chance(0.8) ? pick(['people', 'Person', 'persons', 'people']) : pick([...ODD_STRINGS, 'organizations', 'Constructors', 'to_strings', 'valueOf']);
  const records = chance(0.1) ? Array.from({ length: int(500) }, () => record) : chance(0.2) ? oddValue() : [record, ...(chance(0.3) ? [oddValue()] : [])];
  let json = JSON.stringify({ [collection]: records });
  if (chance(0.1)) json = `{"__proto__":{"people":[${JSON.stringify(record)}]},"people":[${JSON.stringify(record)}]}`;
  if (chance(0.05)) json = `{"people":[${JSON.stringify(record)}],"people":${JSON.stringify(oddValue())}}`;
  return Buffer.from(json);
}

function samlBody(): Buffer {
  let value: string;
  switch (int(9)) {
    case 0: value = Buffer.from('<samlp:Response><unclosed').toString('base64'); break;
    case 1: value = '!!!not base64!!!'; break;
    case 2: value = Buffer.from(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "${'a'.repeat(50)}">]><x>&a;</x>`).toString('base64'); break;
    case 3: value = Buffer.from(`<r>${'<a>'.repeat(3000)}${'</a>'.repeat(3000)}</r>`).toString('base64'); break;
    case 4: value = Buffer.from(Array.from({ length: int(400) }, () => int(256))).toString('base64'); break;
    case 5: {
      const valid = idp.response({ uid: 'usr-evil', email: 'e@x.example', groupUid: 'cld-evil' }, { acsUrl: `${base}/maestrano/auth/saml/consume/${T1}` });
      const bytes = Buffer.from(valid, 'base64');
      for (let i = 0; i < 1 + int(3); i++) bytes[int(bytes.length)] = int(256);
      value = bytes.toString('base64');
      break;
    }
    case 6: value = idp.response({ uid: 'usr-evil', email: 'e@x.example', groupUid: 'cld-evil' }, { acsUrl: `${base}/maestrano/auth/saml/consume/${T1}` }); break;
    case 7: value = Buffer.from('\u0000<x>\ud800</x>', 'utf8').toString('base64'); break;
    default: value = str(oddValue());
  }
  const form = new URLSearchParams();
  if (chance(0.9)) form.set(chance(0.9) ? 'SAMLResponse' : pick(ODD_STRINGS), value);
  if (chance(0.3)) form.set('RelayState', pick([...ODD_STRINGS, '//evil.example/x', 'https://evil.example/', '/ok']));
  let text = form.toString();
  if (chance(0.1)) text = text.slice(0, int(text.length));
  if (chance(0.05)) text = `${text}&SAMLResponse=${value}`;
  return Buffer.from(text);
}

function controlBody(): Buffer {
  switch (int(6)) {
    case 0: return Buffer.from(JSON.stringify({ group_id: oddValue(), opts: oddValue() }));
    case 1: return Buffer.from(new URLSearchParams([['group_id', str(oddValue())], ['opts[full_sync]', str(oddValue())]]).toString());
    case 2: return Buffer.from('__proto__[polluted]=1&constructor[prototype][x]=1&group_id=cld-unknown');
    case 3: return Buffer.from('{"group_id":"cld-unknown","__proto__":{"group_id":"cld-fz1"}}');
    case 4: return Buffer.from(`${'['.repeat(5000)}`);
    default: return Buffer.from(JSON.stringify({ group_id: 'cld-unknown' }));
  }
}

function mutateBytes(body: Buffer): Buffer {
  const out = Buffer.from(body);
  switch (int(6)) {
    case 0: return out.subarray(0, int(out.length + 1));
    case 1: for (let i = 0; i < 1 + int(4); i++) if (out.length) out[int(out.length)] = int(256); return out;
    case 2: return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), out]);
    case 3: return Buffer.from(out.toString('utf8'), 'utf16le');
    case 4: return gzipSync(out);
    default: return Buffer.concat([out, Buffer.from([0x00, 0xc3, 0x28])]);
  }
}

const CONTENT_TYPES = [
  'application/json', 'application/json; charset=utf-8', 'application/json; charset=utf-16', 'APPLICATION/JSON', 'text/plain',
  'application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=latin1', 'multipart/form-data; boundary=x',
  'application/xml', 'application/vnd.api+json', ';;;', 'application/json\u00e9', '',
];

function authorization(): string | undefined {
  switch (int(12)) {
    case 0: return undefined;
    case 1: return basic(API_ID, `${API_KEY}x`);
    case 2: return basic(API_ID, '');
    case 3: return `Basic ${Buffer.from(API_ID).toString('base64')}`;
    case 4: return 'Basic !!!';
    case 5: return `Bearer ${'x'.repeat(int(9000))}`;
    case 6: return `Basic ${'A'.repeat(20_000)}`;
    case 7: return `Basic ${Buffer.from(`${API_ID}:\u00e9\u0000`).toString('base64')}`;
    case 8: return basic(API_ID2, API_KEY2);
    case 9: return `basic   ${GOOD.slice(6)}   `;
    case 10: return `Basic ${Buffer.from(`${API_ID}:${API_KEY}:extra`).toString('base64')}`;
    default: return '\u00ff\u00fe';
  }
}

function segment(): string {
  return pick([
    ...GROUPS, ...USERS, 'cld-unknown', 'usr-unknown', '..', '.', '%2e%2e', '%2F', 'a%2Fb', '%00', '%E0%A4%A', '%ff', '', 'x'.repeat(300),
    encodeURIComponent('🙂'), '%C0%AE', 'cld-fz1%00', 'cld-fz1.', '__proto__', 'constructor',
  ]);
}

function tenantSegment(): string {
  return chance(0.7) ? pick([T1, T1, T2, encodeURIComponent(T2)]) : pick([`${T1}.`, `${T1}%2E`, T1.toUpperCase(), 'unknown', `${T1}%00`, '%2e%2e', `${T1}/`, `%20${T1}`, 'fz.eu~1.', 'fz.eu%7E1']);
}

type Kind = 'notification' | 'group' | 'groupUser' | 'metadata' | 'samlMetadata' | 'init' | 'consume' | 'control' | 'random';

function request(): { kind: Kind; raw: Raw } {
  const kind = pick<Kind>(['notification', 'notification', 'notification', 'group', 'groupUser', 'metadata', 'samlMetadata', 'init', 'consume', 'consume', 'control', 'control', 'random']);
  const t = tenantSegment();
  let method = 'POST';
  let path = '/';
  let body: Buffer | undefined;
  let contentType: string | undefined = 'application/json';
  switch (kind) {
    case 'notification': path = `/maestrano/connec/notifications/${t}`; body = notification(); break;
    case 'group': method = 'DELETE'; path = `/maestrano/account/groups/${segment()}/${t}`; break;
    case 'groupUser': method = 'DELETE'; path = `/maestrano/account/groups/${segment()}/users/${segment()}/${t}`; break;
    case 'metadata': method = 'GET'; path = `/maestrano/metadata/${t}`; break;
    case 'samlMetadata': method = 'GET'; path = `/maestrano/auth/saml/metadata/${t}`; break;
    case 'init': {
      method = 'GET';
      const q = new URLSearchParams();
      if (chance(0.7)) q.set('group_id', str(oddValue()));
      if (chance(0.5)) q.set(pick(['return_to', 'RelayState']), pick([...ODD_STRINGS, '//evil.example', '/\\evil.example', 'javascript:alert(1)', '/ok?x=1']));
      path = `/maestrano/auth/saml/init/${t}?${q.toString()}${chance(0.1) ? '&%zz=%' : ''}`;
      break;
    }
    case 'consume': path = `/maestrano/auth/saml/consume/${t}`; body = samlBody(); contentType = 'application/x-www-form-urlencoded'; break;
    case 'control': {
      const which = int(4);
      method = ['POST', 'PUT', 'GET', 'PUT'][which]!;
      path = [`/maestrano/${t}/synchronizations`, `/maestrano/${t}/synchronizations/toggle_sync`, `/maestrano/${t}/synchronizations/${segment()}`, `/maestrano/${t}/synchronizations/update_metadata`][which]!;
      if (which !== 2 || chance(0.3)) body = controlBody();
      break;
    }
    default: path = `/${Array.from({ length: int(7) }, segment).join(pick(['/', '//', '/./', '/../']))}`;
  }
  if (chance(0.15)) method = pick(['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'POST', 'FOO', 'get', 'M-SEARCH', 'PROPFIND']);
  if (chance(0.1)) path = pick([path.replace(/\//g, '//'), `${path}/`, path.replace('/maestrano/', '/maestrano/./'), path.replace('/maestrano/', '/x/../maestrano/'), `${path}?${'a=b&'.repeat(200)}`, `${path}#frag`, path.replace(/\//g, '%2F')]);
  if (body && chance(0.2)) body = mutateBytes(body);
  if (!body && chance(0.1)) body = notification();
  if (chance(0.03)) body = Buffer.from(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
  if (chance(0.03)) body = Buffer.from(`{"people":[${'{"id":"x","group_id":"cld-fz1"},'.repeat(20_000)}{}]}`);
  const headers: [string, string][] = [];
  // The valid credentials of the route's tenant in most webhook cases (else nothing reaches the handler).
  let auth = chance(0.6) ? (t.includes('eu') ? GOOD2 : GOOD) : authorization();
  // A valid deletion of a seeded group or member is a legitimate change: wrong key for those.
  if ((kind === 'group' || kind === 'groupUser') && auth !== undefined && (auth.includes(GOOD.slice(6)) || auth.includes(GOOD2.slice(6))) && GROUPS.some((g) => path.includes(`/${g}/`))) auth = basic(API_ID, 'wrong');
  if (auth !== undefined) headers.push(['Authorization', auth]);
  if (chance(0.05)) headers.push(['Authorization', pick([GOOD, GOOD2, 'Basic x'])]);
  if (chance(0.2)) contentType = pick(CONTENT_TYPES);
  if (contentType !== undefined && body) headers.push(['Content-Type', contentType]);
  if (chance(0.08)) headers.push(['Content-Encoding', pick(['gzip', 'deflate', 'br', 'identity', 'x-unknown', 'gzip, gzip'])]);
  if (chance(0.1)) headers.push(['Cookie', pick(['mno_sso=1', `maestrano_sso_req_${T1}=e30.${'A'.repeat(43)}`, '\u00e9=\u00e9', ';;;=', `a=${'b'.repeat(6000)}`])]);
  if (chance(0.05)) headers.push(['X-Forwarded-Host', 'evil.example']);
  const raw: Raw = { method, path, headers, chunked: chance(0.2) };
  if (body && method !== 'GET' && method !== 'HEAD') raw.body = body;
  // A second, conflicting length (a request smuggling shape); never on a bodiless request (the
  // server would wait for the bytes declared).
  if (raw.body && raw.body.byteLength >= 5 && chance(0.05)) headers.push(['Content-Length', '5']);
  return { kind, raw };
}

// --- properties ----------------------------------------------------------------------------
const tally = { sent: 0, refused: 0, accepted: 0, nodeRefused: 0, slowestMs: 0, slowest: '' };

function expectNoSecret(text: string, where: string): void {
  for (const secret of SECRETS) expect(text.includes(secret), `secret echoed in ${where}`).toBe(false);
}

async function check(raw: Raw, kind: string): Promise<Answer> {
  const before = dump();
  const logsBefore = logs.length;
  const answer = await send(raw);
  tally.sent++;
  if (answer.ms > tally.slowestMs) {
    tally.slowestMs = answer.ms;
    tally.slowest = `${raw.method} ${raw.path.slice(0, 80)} (${raw.body?.byteLength ?? 0} bytes)`;
  }
  if (answer.ms > 1000) console.log(`[fuzz] slow: ${answer.ms.toFixed(0)} ms ${kind} ${raw.method} ${raw.path.slice(0, 80)} ${raw.body?.byteLength ?? 0} bytes -> ${answer.status}: ${JSON.stringify(raw.body?.toString('utf8').slice(0, 150) ?? null)}`);
  const where = `${kind}: ${raw.method} ${raw.path.slice(0, 120)} [${raw.headers.map(([n, v]) => `${n}: ${v.slice(0, 40)}`).join(' | ')}] body=${JSON.stringify(raw.body?.toString('utf8').slice(0, 300) ?? null)} -> ${answer.status} ${answer.body.slice(0, 300)}`;
  expect(answer.status, where).toBeGreaterThanOrEqual(200);
  expect(answer.status, where).toBeLessThan(500);
  expectNoSecret(JSON.stringify(answer.headers) + answer.body, `the answer of ${where}`);
  expectNoSecret(logs.slice(logsBefore).join('\n'), `the logs of ${where}`);
  if (answer.status >= 400) {
    // Node's own HTTP parser refuses some requests before the SDK sees them: a bare 400.
    const fromNode = [400, 413, 414, 431].includes(answer.status) && answer.headers['content-type'] === undefined && answer.body === '';
    if (fromNode) tally.nodeRefused++;
    else if (raw.method.toUpperCase() !== 'HEAD') {
      expect(answer.headers['content-type'] ?? '', where).toMatch(/^application\/json/);
      const parsed = JSON.parse(answer.body) as Record<string, unknown>;
      const shaped =
        typeof parsed.error === 'string' ||
        (Array.isArray(parsed.errors) && parsed.errors.every((e) => typeof (e as { message?: unknown }).message === 'string' && typeof (e as { code?: unknown }).code === 'number'));
      expect(shaped, `error shape of ${where}`).toBe(true);
    }
    expect(dump(), `storage changed by a refused request: ${where}`).toBe(before);
    tally.refused++;
  } else {
    tally.accepted++;
    if (process.env.MNO_FUZZ_DEBUG && JSON.parse(dump()).groups.some(([, g]: [string, { status: string; groupId: string }]) => GROUPS.includes(g.groupId) && g.status !== 'active')) console.log(`[fuzz] seeded group changed by ${where}`);
  }
  expect(unhandled, where).toEqual([]);
  return answer;
}

describe(`fuzzing the HTTP entry points (memory storage, seed ${SEED})`, () => {
  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    idp = createTestIdp();
    storage = memoryAdapter();
    let listener: ((req: never, res: never) => void) | undefined;
    server = createServer((req, res) => void listener?.(req as never, res as never));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
    const contacts = defineEntity({
      name: 'contacts',
      connec: 'people',
      direction: 'inbound',
      toLocal: (p: Record<string, unknown>) => ({ name: typeof p.first_name === 'string' ? p.first_name : '' }),
      local: { create: async () => ({ id: 'never-run' }), update: async () => undefined },
    });
    let n = 0;
    mno = createMaestrano({
      tenants: [
        idp.marketplace({ name: T1, appHost: base, apiId: API_ID, apiKey: API_KEY }),
        idp.marketplace({ name: T2, appHost: base, apiId: API_ID2, apiKey: API_KEY2 }),
      ],
      storage,
      provisioning: {
        createCompany: () => ({ id: `company-${++n}` }),
        createUser: () => ({ id: `user-${++n}` }),
        cancelCompany: () => {},
        blockUser: () => {},
      },
      onLogin: ({ user }) => Response.json({ userId: user.id }),
      connector: defineConnector({ entities: [contacts] }),
      billing: { cancelRecurringBillsOnGroupDeleted: false },
      sso: { requestBinding: { secret: BINDING_SECRET } },
      logger,
    });
    listener = toNodeListener(mno.handler) as never;
    // State to protect: two groups with a user each (real SP-initiated logins), and one stored
    // notification.
    for (let i = 0; i < GROUPS.length; i++) {
      const init = await fetch(`${base}/maestrano/auth/saml/init/${T1}?group_id=${GROUPS[i]}`, { redirect: 'manual' });
      const cookie = init.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
      const { samlResponse, acsUrl } = idp.respondTo(init.headers.get('location')!, { uid: USERS[i]!, email: `${USERS[i]}@fz.example`, groupUid: GROUPS[i]! });
      const res = await fetch(acsUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, body: new URLSearchParams({ SAMLResponse: samlResponse }) });
      expect(res.status).toBe(200);
    }
    const stored = await send({ method: 'POST', path: `/maestrano/connec/notifications/${T1}`, headers: [['Authorization', GOOD], ['Content-Type', 'application/json']], body: Buffer.from(JSON.stringify({ people: [{ id: [{ id: 'p-0', provider: 'connec', realm: 'org-fz1' }], group_id: 'cld-fz1', first_name: 'Ann' }] })) });
    expect(stored.status).toBe(200);
  });

  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    console.log(`[fuzz] seed ${SEED}: ${tally.sent} requests, ${tally.accepted} accepted, ${tally.refused} refused (${tally.nodeRefused} by node's parser); slowest ${tally.slowestMs.toFixed(0)} ms: ${tally.slowest}`);
    await new Promise<void>((resolve) => {
      server?.closeAllConnections();
      server ? server.close(() => resolve()) : resolve();
    });
  });

  it('random and mutated requests on every route: no 5xx, refusals typed JSON that change nothing, no secret echoed', async () => {
    rand = seededRandom(SEED);
    for (let i = 0; i < RUNS; i++) {
      const { kind, raw } = request();
      await check(raw, `#${i} ${kind}`);
    }
  }, 60_000 + RUNS * 100);

  it('the store still holds the seeded groups and users (no accepted request deleted them)', () => {
    const s = memoryState(storage);
    for (const g of GROUPS) expect(s.groups.get(JSON.stringify([T1, g]))?.status, g).toBe('active');
  });
});

describe(`fuzzing parseNotification and the configuration (seed ${SEED})`, () => {
  it('parseNotification: returns, or throws a PayloadValidationError; never anything else', () => {
    rand = seededRandom(SEED + 1);
    for (let i = 0; i < 1000; i++) {
      let body: unknown;
      switch (int(5)) {
        case 0: body = notification().toString('utf8'); break;
        case 1: body = mutateBytes(notification()); break;
        case 2: body = { [pick([...ODD_STRINGS, 'people', 'Person', 'Constructors', 'value_of', 'to_locale_strings'])]: oddValue() }; break;
        case 3: body = oddValue(); break;
        default: body = new Uint8Array(mutateBytes(notification()));
      }
      for (const options of [{}, { collections: (c: string) => c === 'people' }, { onInvalidRecord: () => {} }]) {
        try {
          parseNotification(body, options);
        } catch (error) {
          expect(error, `${Buffer.isBuffer(body) || body instanceof Uint8Array ? Buffer.from(body).toString('utf8').slice(0, 300) : JSON.stringify(body)?.slice(0, 300)}: ${String(error)}`).toBeInstanceOf(PayloadValidationError);
        }
      }
    }
  });

  it('createMaestrano and configFromEnv with odd values: a ClientConfigError naming no secret, never another error', async () => {
    rand = seededRandom(SEED + 2);
    const valid = () => ({
      tenants: [idp.marketplace({ name: T1, appHost: 'https://app.example', apiId: API_ID, apiKey: API_KEY })] as unknown[],
      storage: memoryAdapter(),
      provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) } as Record<string, unknown>,
      onLogin: () => new Response(null),
      logger,
    });
    const mutate = (target: Record<string, unknown>, depth = 0): void => {
      const keys = Object.keys(target);
      if (keys.length === 0) return;
      const key = pick(keys);
      const value = target[key];
      if (key === 'key' && depth > 0) return; // keep the api key itself where it is (it must never be echoed)
      if (value !== null && typeof value === 'object' && !Array.isArray(value) && chance(0.6)) {
        mutate(value as Record<string, unknown>, depth + 1);
        return;
      }
      target[key] = chance(0.2) ? `${str(value)}${pick([' ', '\r', '\u0000', '/', '?x=1', '#', '..', ':0'])}` : oddValue();
    };
    let refused = 0;
    const logsBefore = logs.length;
    for (let i = 0; i < 400; i++) {
      const config = valid();
      const tenant = JSON.parse(JSON.stringify(config.tenants[0])) as Record<string, unknown>;
      for (let m = 0; m < 1 + int(3); m++) mutate(tenant);
      config.tenants = chance(0.1) ? [tenant, tenant] : [tenant];
      try {
        createMaestrano(config as never);
      } catch (error) {
        refused++;
        const where = `${JSON.stringify(tenant).slice(0, 400)}: ${String(error)}`;
        expect(isMaestranoError(error) && error instanceof ClientConfigError, where).toBe(true);
        expectNoSecret(`${(error as Error).message} ${JSON.stringify((error as { issues?: unknown }).issues ?? null)}`, where);
      }
    }
    for (let i = 0; i < 300; i++) {
      const env: Record<string, string | undefined> = { MNO_DEVPL_ENV_KEY: API_KEY, MNO_DEVPL_ENV_SECRET: BINDING_SECRET };
      for (const name of ['MNO_DEVPL_HOST', 'MNO_DEVPL_API_PATH', 'MNO_DEVPL_ENV_NAME', 'MNO_DEVPL_ENV_KEY', 'MNO_DEVPL_ENV_SECRET']) {
        if (chance(0.5)) env[name] = pick([...ODD_STRINGS, 'http://127.0.0.1:4000', 'https://u:p@x.example', 'ftp://x', 'https://x.example/?q', '/api', 'api/config', 'https://x.example/api', undefined as never]);
      }
      // The key and the secret only where they belong (the other variables are logged).
      if (chance(0.3)) env.MNO_DEVPL_ENV_KEY = pick([`${API_KEY} `, `\r${API_KEY}\r`, `${API_KEY}\u0000`]);
      try {
        configFromEnv(env, { logger });
      } catch (error) {
        expect(error, String(error)).toBeInstanceOf(ClientConfigError);
        expectNoSecret((error as Error).message, `configFromEnv ${JSON.stringify(env)}`);
      }
    }
    for (const line of logs.slice(logsBefore)) expectNoSecret(line, `the configuration log line ${line.slice(0, 600)}`);
    console.log(`[fuzz] configuration: ${refused} of 400 mutated tenant configurations refused`);
  });
});
