// A caller that sends its headers and then stalls or trickles its body (slowloris) must not
// hold the connection, and the bytes it sent, for as long as the server lets it (Node's
// `requestTimeout`: 300 s by default; some fetch-style runtimes: forever). Every route reads its
// body before its handler runs (after the credentials check on webhook routes), so no lock,
// claim or storage connection is held while it waits: what a stalled body holds is its socket
// and its bytes. `limits.bodyReadTimeoutMs` bounds that: past it, 408 `request_timeout`, the
// stream is cancelled and nothing received is kept. Over loopback HTTP (node:net sockets
// writing a partial body) through `toNodeListener`, and through the fetch-style `mno.handler`.
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import {
  createMaestrano,
  DEFAULT_BODY_READ_TIMEOUT_MS,
  JobTypes,
  type Logger,
  memoryAdapter,
  type StorageAdapter,
  staticTenants,
  toNodeListener,
} from '@org/maestrano-sdk';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FakeConnec } from '../sync/fake-connec.js';
import { API_ID, API_KEY, buildConnector, C, GROUP, LocalApp, ORG_UID, TENANT, testTenant } from '../sync/harness.js';

const warnings: { message: string; fields: Record<string, unknown> }[] = [];
const logger: Logger = { debug() {}, info() {}, warn: (message, fields = {}) => warnings.push({ message, fields }), error() {} };
const auth = `Basic ${Buffer.from(`${API_ID}:${API_KEY}`).toString('base64')}`;
const NOTIFICATIONS = `/maestrano/connec/notifications/${TENANT}`;
const CONSUME = `/maestrano/auth/saml/consume/${TENANT}`;

let server: Server | undefined;
const sockets: Socket[] = [];
const timers: ReturnType<typeof setInterval>[] = [];
afterEach(async () => {
  for (const t of timers.splice(0)) clearInterval(t);
  for (const s of sockets.splice(0)) s.destroy();
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
  warnings.length = 0;
});

function build(limits?: Record<string, unknown>) {
  const storage = memoryAdapter();
  const mno = createMaestrano({
    tenants: staticTenants([testTenant()]),
    storage,
    provisioning: { createCompany: () => ({ id: 'company' }), createUser: () => ({ id: 'user' }) },
    onLogin: () => new Response('ok'),
    logger,
    connector: buildConnector(new LocalApp()),
    sync: { connecPort: () => new FakeConnec(ORG_UID) },
    ...(limits ? { limits } : {}),
  } as Parameters<typeof createMaestrano>[0]);
  return { mno, storage };
}

async function start(limits?: Record<string, unknown>): Promise<{ port: number; storage: StorageAdapter }> {
  const { mno, storage } = build(limits);
  const claim = await storage.groups.claim(TENANT, GROUP, { owner: 'test', ttlMs: 60_000 });
  if (claim.state !== 'claimed') throw new Error('group already provisioned');
  await storage.groups.complete(TENANT, GROUP, 'test', { companyId: 'co-1', orgUid: ORG_UID });
  server = createServer(toNodeListener(mno.handler));
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, storage };
}

const person = (i: number) => ({
  id: [C(`p${i}`)],
  first_name: 'Jane',
  last_name: `Doe ${i}`,
  group_id: GROUP,
  channel_id: ORG_UID,
  resource_type: 'people',
  created_at: '2016-10-04T00:36:23Z',
  updated_at: '2016-10-04T00:36:23Z',
});

interface Stalled {
  socket: Socket;
  /** Everything the server sent, once it closed the connection. */
  answer: Promise<string>;
}

/** A raw connection that sends the request head and `partial` of a `declared`-byte body, then stalls. */
async function stalled(port: number, path: string, headers: string, partial: string, declared: number): Promise<Stalled> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  sockets.push(socket);
  let received = '';
  socket.on('data', (chunk) => {
    received += chunk.toString('latin1');
  });
  const answer = new Promise<string>((resolve) => socket.once('close', () => resolve(received)));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Content-Length: ${declared}\r\n\r\n${partial}`);
  return { socket, answer };
}

const openConnections = () => new Promise<number>((resolve) => server?.getConnections((_, n) => resolve(n)));

const bodyOf = (raw: string) => {
  const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  // Chunked or not: the JSON object in it.
  return JSON.parse(body.slice(body.indexOf('{'), body.lastIndexOf('}') + 1)) as Record<string, unknown>;
};

describe('limits.bodyReadTimeoutMs through toNodeListener (loopback HTTP)', () => {
  it('a stalled SAML post (no credentials needed) gets 408 request_timeout and its connection is closed', { timeout: 20_000 }, async () => {
    const { port } = await start({ bodyReadTimeoutMs: 1_000 });
    const client = await stalled(port, CONSUME, 'Content-Type: application/x-www-form-urlencoded\r\n', 'SAMLResponse=PHNhbWxw', 64 * 1024);
    // Without a deadline the server keeps this connection until Node's requestTimeout (300 s).
    const raw = await client.answer;
    expect(raw.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
    // Closed once the answer is written (the rest of the body will never be read), not kept idle.
    expect(raw.split('\r\n\r\n')[0]!.toLowerCase().split('\r\n')).toContain('connection: close');
    expect(bodyOf(raw)).toEqual({ error: 'request_timeout', message: 'Request body not received within 1000 ms' });
    await vi.waitFor(async () => expect(await openConnections()).toBe(0), { timeout: 10_000 });
    expect(warnings.map((w) => [w.message, w.fields])).toEqual([
      ['maestrano: a request body was not received in time (408)', { tenant: TENANT, route: 'ssoConsume', timeoutMs: 1_000, idle: false }],
    ]);
  });

  it('a SAML post (anyone may send one) trickled a byte at a time is cut off at the deadline too (a deadline for the whole body, not between bytes)', { timeout: 20_000 }, async () => {
    const { port } = await start({ bodyReadTimeoutMs: 1_000 });
    const client = await stalled(port, CONSUME, 'Content-Type: application/x-www-form-urlencoded\r\n', 'S', 64 * 1024);
    const trickle = setInterval(() => {
      if (!client.socket.destroyed) client.socket.write('A');
    }, 50);
    timers.push(trickle);
    const raw = await client.answer;
    clearInterval(trickle);
    expect(raw.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
    expect(bodyOf(raw)).toMatchObject({ error: 'request_timeout' });
  });

  it("Maestrano's notification sent slowly but steadily past the deadline is read whole and stored (only a pause cuts an authenticated route)", { timeout: 20_000 }, async () => {
    const { port, storage } = await start({ bodyReadTimeoutMs: 1_000 });
    const whole = JSON.stringify({ people: [person(1), person(2)] });
    const head = `Authorization: ${auth}\r\nContent-Type: application/json\r\nConnection: close\r\n`;
    const client = await stalled(port, NOTIFICATIONS, head, '', Buffer.byteLength(whole));
    // About 2.5 s in all (past the 1 s deadline), never pausing for long.
    const step = Math.ceil(whole.length / 50);
    let sent = 0;
    const trickle = setInterval(() => {
      if (client.socket.destroyed || sent >= whole.length) return;
      client.socket.write(whole.slice(sent, sent + step));
      sent += step;
    }, 50);
    timers.push(trickle);
    const raw = await client.answer;
    clearInterval(trickle);
    expect(raw.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    expect(bodyOf(raw)).toMatchObject({ received: 2, stored: 2 });
    expect(await storage.jobs.counts({ type: JobTypes.connecRecord })).toMatchObject({ pending: 2 });
  });

  it('stalled notifications get 408 and store nothing; meanwhile a whole notification is stored (nothing shared is held)', { timeout: 20_000 }, async () => {
    const { port, storage } = await start({ bodyReadTimeoutMs: 1_500 });
    const whole = JSON.stringify({ people: [person(1), person(2)] });
    // Ten authenticated notifications sending all but the last bytes of their body, then nothing.
    const head = `Authorization: ${auth}\r\nContent-Type: application/json\r\n`;
    const stuck = await Promise.all(Array.from({ length: 10 }, () => stalled(port, NOTIFICATIONS, head, whole.slice(0, -2), Buffer.byteLength(whole))));
    // While they wait, another notification goes through in full: the route holds no lock,
    // claim or slot while it reads a body.
    const other = JSON.stringify({ people: [person(3)] });
    const res = await fetch(`http://127.0.0.1:${port}${NOTIFICATIONS}`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: other,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ received: 1, stored: 1 });

    const answers = await Promise.all(stuck.map((s) => s.answer));
    for (const raw of answers) {
      expect(raw.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
      expect(bodyOf(raw)).toMatchObject({ error: 'request_timeout' });
    }
    // Only the whole notification's record was stored; none of the stalled ones' partial bodies.
    expect(await storage.jobs.counts({ type: JobTypes.connecRecord })).toMatchObject({ pending: 1 });
  });
});

describe('limits.bodyReadTimeoutMs through the fetch-style handler', () => {
  it('a body stream that never ends gets 408 and is cancelled (on runtimes without a request timeout it was held forever)', { timeout: 20_000 }, async () => {
    const { mno, storage } = build({ bodyReadTimeoutMs: 1_000 });
    const encoder = new TextEncoder();
    let cancelled: unknown = null;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode('{"people":[{"id":'));
      },
      cancel(reason) {
        cancelled = reason;
      },
    });
    const request = new Request(`http://127.0.0.1:3000${NOTIFICATIONS}`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit & { duplex: 'half' });
    const res = await mno.handler(request);
    expect(res.status).toBe(408);
    // Maestrano's route (authenticated): what cuts it is the pause, not the length of the upload.
    expect(await res.json()).toEqual({ error: 'request_timeout', message: 'Request body stalled: no bytes received for 1000 ms' });
    expect(cancelled).toMatchObject({ name: 'BodyReadTimeoutError' });
    expect(await storage.jobs.counts({ type: JobTypes.connecRecord })).toMatchObject({ pending: 0, running: 0, done: 0, dead: 0 });
  });

  it('defaults to 30 s and is refused outside 1 s .. 1 h or when not a whole number (ConfigError naming it)', () => {
    expect(DEFAULT_BODY_READ_TIMEOUT_MS).toBe(30_000);
    expect(() => build()).not.toThrow();
    for (const bad of [0, 999, 3_600_001, 1_500.5, '30000']) {
      expect(() => build({ bodyReadTimeoutMs: bad }), String(bad)).toThrow(/limits\.bodyReadTimeoutMs/);
    }
    expect(() => build({ bodyReadTimeoutMs: 1_000 })).not.toThrow();
    expect(() => build({ bodyReadTimeoutMs: 3_600_000 })).not.toThrow();
  });
});
