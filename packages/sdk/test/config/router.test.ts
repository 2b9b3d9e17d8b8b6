import { createServer, type IncomingMessage, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createRouter,
  type HandlerArgs,
  type Logger,
  type RouteTable,
  resolveTenants,
  SsoError,
  staticTenants,
  toNodeListener,
} from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const { certificate } = createTestCertificate({ bits: 1024 });
const tenants = staticTenants(
  resolveTenants([
    {
      marketplace: 'mkt-a',
      app: { host: 'http://app.test' },
      api: { id: 'app-a', key: 'key-a', host: 'http://hub.test' },
      sso: { x509_certificate: certificate },
    },
    {
      marketplace: 'mkt-b',
      app: { host: 'http://app.test' },
      api: { id: 'app-b', key: 'key-b', host: 'http://hub.test' },
      sso: { x509_certificate: certificate, consume_path: '/custom/acs' },
      webhook: { account: { groups_path: '/hooks/groups/:id' } },
    },
  ]),
);

const seen: { kind: string; tenant: string; params: Record<string, string>; body: string }[] = [];
const record = (kind: string) => async ({ request, tenant, params }: HandlerArgs) => {
  seen.push({ kind, tenant: tenant.name, params, body: await request.text() });
  return Response.json({ kind });
};
const errors: string[] = [];
const logger: Logger = { debug() {}, info() {}, warn() {}, error: (m) => errors.push(m) };

const routes: RouteTable = {
  ssoConsume: record('ssoConsume'),
  groupDeleted: record('groupDeleted'),
  groupUserDeleted: record('groupUserDeleted'),
  connecNotification: async () => {
    throw new Error('database exploded at /srv/app/secret.js:12');
  },
  ssoInit: async () => {
    throw new SsoError('unknown_tenant', 'Unknown marketplace');
  },
};
const handler = createRouter({ tenants, routes, maxBodyBytes: 1024, logger });
/** The Basic credentials Maestrano sends to each tenant's webhooks and notifications. */
const creds = {
  'mkt-a': { authorization: `Basic ${Buffer.from('app-a:key-a').toString('base64')}` },
  'mkt-b': { authorization: `Basic ${Buffer.from('app-b:key-b').toString('base64')}` },
};

let baseUrl: string;
const server = createServer((req, res) => void toNodeListener(handler)(req, res));
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('the Maestrano router (through toNodeListener on loopback)', () => {
  it('routes by the tenant (last segment) and its configured paths, extracting id and group_id', async () => {
    seen.length = 0;
    const r1 = await fetch(`${baseUrl}/maestrano/account/groups/cld-9/users/usr-3/mkt-a`, { method: 'DELETE', headers: creds['mkt-a'] });
    expect(await r1.json()).toEqual({ kind: 'groupUserDeleted' });
    const r2 = await fetch(`${baseUrl}/hooks/groups/cld-7/mkt-b`, { method: 'DELETE', headers: creds['mkt-b'] });
    expect(await r2.json()).toEqual({ kind: 'groupDeleted' });
    const r3 = await fetch(`${baseUrl}/custom/acs/mkt-b`, { method: 'POST', body: 'SAMLResponse=abc' });
    expect(r3.status).toBe(200);
    expect(seen).toEqual([
      { kind: 'groupUserDeleted', tenant: 'mkt-a', params: { group_id: 'cld-9', id: 'usr-3' }, body: '' },
      { kind: 'groupDeleted', tenant: 'mkt-b', params: { id: 'cld-7' }, body: '' },
      { kind: 'ssoConsume', tenant: 'mkt-b', params: {}, body: 'SAMLResponse=abc' },
    ]);
    // mkt-b's paths are not mkt-a's.
    expect((await fetch(`${baseUrl}/maestrano/auth/saml/consume/mkt-b`, { method: 'POST', body: 'x' })).status).toBe(404);
  });

  it('hands requests naming an unknown tenant to unknownTenant with the kind their path has (suffix or ?marketplace=)', async () => {
    const queried = staticTenants(
      resolveTenants([
        {
          marketplace: 'mkt-q',
          app: { host: 'http://app.test' },
          api: { id: 'app-q', key: 'key-q', host: 'http://hub.test' },
          sso: { x509_certificate: certificate, init_path: '/sso/start?marketplace=mkt-q' },
        },
      ]),
    );
    const kinds: string[] = [];
    const route = createRouter({
      tenants: queried,
      routes,
      maxBodyBytes: 1024,
      logger,
      unknownTenant: (kind) => {
        kinds.push(kind);
        return kind === 'metadata' ? null : new Response(`rendered ${kind}`, { status: 404 });
      },
    });
    expect(await (await route(new Request('http://app.test/sso/start?marketplace=gone'))).text()).toBe('rendered ssoInit');
    const consume = await route(new Request('http://app.test/maestrano/auth/saml/consume/gone', { method: 'POST', body: 'x' }));
    expect(await consume.text()).toBe('rendered ssoConsume');
    // null: the default answer.
    const metadata = await route(new Request('http://app.test/maestrano/metadata/gone'));
    expect(await metadata.json()).toEqual({ error: 'unknown_tenant', message: 'Unknown tenant' });
    // Not this tenant's init path, and the wrong method for the consume shape: no kind at all.
    expect((await route(new Request('http://app.test/maestrano/auth/saml/init/gone'))).status).toBe(404);
    expect((await route(new Request('http://app.test/maestrano/auth/saml/consume/gone'))).status).toBe(404);
    expect(kinds).toEqual(['ssoInit', 'ssoConsume', 'metadata']);

    // A renderer that throws is a logged 500, as on every other route, never a rejection.
    const logged: string[] = [];
    const throwing = createRouter({
      tenants: queried,
      routes,
      maxBodyBytes: 1024,
      logger: { ...logger, error: (m) => logged.push(m) },
      unknownTenant: () => {
        throw new Error('template bug');
      },
    });
    const failed = await throwing(new Request('http://app.test/sso/start?marketplace=gone'));
    expect(failed.status).toBe(500);
    expect(JSON.stringify(await failed.json())).not.toMatch(/template bug/);
    expect(logged).toHaveLength(1);
  });

  it('answers 404 JSON for an unknown tenant, an unknown path and a route kind without a handler', async () => {
    const unknown = await fetch(`${baseUrl}/maestrano/auth/saml/consume/nope`, { method: 'POST', body: 'x' });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: 'unknown_tenant', message: 'Unknown tenant' });
    const path = await fetch(`${baseUrl}/somewhere/else/mkt-a`);
    expect(path.status).toBe(404);
    expect(await path.json()).toEqual({ error: 'not_found', message: 'Not found' });
    const noHandler = await fetch(`${baseUrl}/maestrano/metadata/mkt-a`);
    expect(noHandler.status).toBe(404);
    expect(await noHandler.json()).toEqual({ error: 'not_found', message: 'Not found' });
  });

  it('refuses webhooks and notifications without the tenant credentials before reading their body', async () => {
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        if (pulled > 1_000) controller.close();
        else controller.enqueue(new Uint8Array(1).fill(65));
      },
    });
    const url = 'http://127.0.0.1/maestrano/connec/notifications/mkt-a';
    const res = await handler(new Request(url, { method: 'POST', body, duplex: 'half' } as RequestInit));
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Basic realm="maestrano"');
    // The stream's first pull happens when it is created; nothing was read past it.
    expect(pulled).toBeLessThanOrEqual(2);
    seen.length = 0;
    // Another tenant's credentials, over loopback HTTP: refused before the handler runs.
    const wrong = await fetch(`${baseUrl}/hooks/groups/cld-1/mkt-b`, { method: 'DELETE', headers: creds['mkt-a'] });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Basic realm="maestrano"');
    await wrong.body?.cancel();
    expect(seen).toEqual([]);
    // The same request with its own tenant's credentials reaches the handler.
    const right = await fetch(`${baseUrl}/hooks/groups/cld-1/mkt-b`, { method: 'DELETE', headers: creds['mkt-b'] });
    expect(right.status).toBe(200);
    expect(seen.map((s) => [s.kind, s.tenant, s.params])).toEqual([['groupDeleted', 'mkt-b', { id: 'cld-1' }]]);
  });

  it('reads a body sent in many tiny chunks exactly, and refuses one that passes the limit', async () => {
    seen.length = 0;
    const chunked = (bytes: number) =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < bytes; i++) controller.enqueue(new Uint8Array([48 + (i % 10)]));
          controller.close();
        },
      });
    const url = 'http://127.0.0.1/custom/acs/mkt-b';
    const ok = await handler(new Request(url, { method: 'POST', body: chunked(1_000), duplex: 'half' } as RequestInit));
    expect(ok.status).toBe(200);
    expect(seen.map((s) => s.body)).toEqual([Array.from({ length: 1_000 }, (_, i) => String(i % 10)).join('')]);
    const over = await handler(new Request(url, { method: 'POST', body: chunked(1_025), duplex: 'half' } as RequestInit));
    expect(over.status).toBe(413);
    expect(seen).toHaveLength(1);
  });

  it('answers 405 with Allow for a known path and the wrong method', async () => {
    const res = await fetch(`${baseUrl}/maestrano/auth/saml/consume/mkt-a`);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect((await res.json()).error).toBe('method_not_allowed');
  });

  it('answers 413 for a declared or streamed body over the limit, without calling the handler', async () => {
    seen.length = 0;
    const declared = await fetch(`${baseUrl}/maestrano/auth/saml/consume/mkt-a`, { method: 'POST', body: 'x'.repeat(2048) });
    expect(declared.status).toBe(413);
    expect((await declared.json()).error).toBe('payload_too_large');
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 8; i++) controller.enqueue(new Uint8Array(512).fill(65));
        controller.close();
      },
    });
    const streamed = await fetch(`${baseUrl}/maestrano/auth/saml/consume/mkt-a`, {
      method: 'POST',
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(seen).toEqual([]);
  });

  it('maps typed errors to their status and anything else to a bare logged 500 (no stack, no detail)', async () => {
    errors.length = 0;
    const boom = await fetch(`${baseUrl}/maestrano/connec/notifications/mkt-a`, { method: 'POST', body: '{}', headers: creds['mkt-a'] });
    expect(boom.status).toBe(500);
    const text = await boom.text();
    expect(JSON.parse(text)).toEqual({ error: 'internal_error', message: 'Internal error' });
    expect(text).not.toContain('exploded');
    expect(errors).toEqual(['maestrano: route handler failed']);
    const typed = await fetch(`${baseUrl}/maestrano/auth/saml/init/mkt-a`);
    expect(typed.status).toBe(404);
    expect(await typed.json()).toEqual({ error: 'unknown_tenant', message: 'Unknown marketplace' });
  });

  it('never hands a handler an id with a control character (NUL cannot be stored): 404', async () => {
    const before = seen.length;
    for (const id of ['%00', 'cld-1%00', '%0A', '%7F']) {
      const res = await fetch(`${baseUrl}/maestrano/account/groups/cld-1/users/${id}/mkt-a`, { method: 'DELETE', headers: creds['mkt-a'] });
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ error: 'not_found', message: 'Not found' });
    }
    expect(seen.length).toBe(before);
    expect((await fetch(`${baseUrl}/maestrano/account/groups/cld-1/users/usr%201/mkt-a`, { method: 'DELETE', headers: creds['mkt-a'] })).status).toBe(200);
  });

  it('answers a 4xx, never a 500, for a `//` request target or an unparsable Host header', async () => {
    const raw = (path: string, host?: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: new URL(baseUrl).port, method: 'POST', path, headers: host ? { host } : {} }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
    const slashes = await raw('//');
    expect(slashes.status).toBe(404);
    expect(JSON.parse(slashes.body)).toEqual({ error: 'unknown_tenant', message: 'Unknown tenant' });
    const badHost = await raw('/maestrano/connec/notifications/mkt-a', 'bad host');
    expect(badHost.status).toBe(400);
    expect(JSON.parse(badHost.body)).toEqual({ error: 'bad_request', message: 'Invalid request URL' });
  });

  it('preserves several Set-Cookie headers and the full URL under an Express-style mount', async () => {
    const listener = toNodeListener(async (request) => {
      const headers = new Headers();
      headers.append('set-cookie', 'a=1; Path=/');
      headers.append('set-cookie', 'b=2; Path=/');
      return Response.json({ url: request.url }, { headers });
    });
    const mounted = createServer((req, res) => {
      // Express strips the mount path from req.url and keeps originalUrl.
      Object.assign(req, { originalUrl: req.url, url: '/stripped' });
      void listener(req, res);
    });
    await new Promise<void>((resolve) => mounted.listen(0, '127.0.0.1', resolve));
    try {
      const port = (mounted.address() as AddressInfo).port;
      const res = await fetch(`http://127.0.0.1:${port}/maestrano/x?y=1`);
      expect(res.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; Path=/']);
      expect(await res.json()).toEqual({ url: `http://127.0.0.1:${port}/maestrano/x?y=1` });
    } finally {
      await new Promise<void>((resolve) => mounted.close(() => resolve()));
    }
  });

  it('rebuilds a body a parser mounted first already read (raw, text, form, JSON), and says so when it cannot', async () => {
    type Parsed = IncomingMessage & { body?: unknown };
    // What Express's body parsers do: read the whole stream, leave the result in req.body.
    const parse = (mode: 'raw' | 'text' | 'form' | 'json' | 'none') =>
      createServer((req: Parsed, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const raw = Buffer.concat(chunks);
          if (mode === 'raw') req.body = raw;
          if (mode === 'text') req.body = raw.toString('utf8');
          if (mode === 'form') req.body = Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
          if (mode === 'json') req.body = JSON.parse(raw.toString('utf8'));
          void toNodeListener(handler)(req, res);
        });
      });
    const post = async (mode: 'raw' | 'text' | 'form' | 'json' | 'none', body: string, type: string, path = '/custom/acs/mkt-b', method = 'POST') => {
      const server = parse(mode);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
        const res = await fetch(url, method === 'POST' ? { method, body, headers: { 'content-type': type } } : { method, headers: creds['mkt-b'] });
        return { status: res.status, json: (await res.json()) as Record<string, unknown> };
      } finally {
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    };
    const form = new URLSearchParams({ SAMLResponse: 'PHNhbWw+/x+y==', RelayState: 'r 1' }).toString();
    seen.length = 0;
    for (const mode of ['raw', 'text', 'form'] as const) {
      expect(await post(mode, form, 'application/x-www-form-urlencoded')).toEqual({ status: 200, json: { kind: 'ssoConsume' } });
    }
    const notification = { people: [{ id: 'p1', name: 'Zoë', n: 1.5 }] };
    expect(await post('json', JSON.stringify(notification), 'application/json; charset=utf-8')).toEqual({ status: 200, json: { kind: 'ssoConsume' } });
    expect(seen.map((s) => s.body)).toEqual([form, form, form, JSON.stringify(notification)]);
    expect(new URLSearchParams(seen[2]?.body).get('SAMLResponse')).toBe('PHNhbWw+/x+y==');

    // Read, and nothing usable left behind: a 500 that names the fix, and the handler never runs.
    seen.length = 0;
    const consumed = await post('none', form, 'application/x-www-form-urlencoded');
    expect(consumed.status).toBe(500);
    expect(consumed.json.error).toBe('body_consumed');
    expect(String(consumed.json.message)).toContain('toNodeListener(mno.handler) under Express) before body parsers');
    expect(seen).toEqual([]);
    // A request without a body (a webhook DELETE) loses nothing when a reader drained it.
    expect(await post('none', '', '', '/hooks/groups/cld-7/mkt-b', 'DELETE')).toEqual({ status: 200, json: { kind: 'groupDeleted' } });
    expect(seen).toEqual([{ kind: 'groupDeleted', tenant: 'mkt-b', params: { id: 'cld-7' }, body: '' }]);
  });
});

