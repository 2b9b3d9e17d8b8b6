/**
 * The admin API and the UI have no authentication (the developer's own machine), so what a web
 * page elsewhere can make the developer's browser send them is refused: a cross-site form or
 * `text/plain` POST (Origin of another site), and a request for a name rebound to 127.0.0.1
 * (DNS rebinding: Host of another name). Node's HTTP clients send neither, and go through.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../src/index.js';
import { basic } from './helpers.js';

/** A raw HTTP request (fetch cannot set Host), answered with its status and body. */
function send(url: string, method: string, headers: Record<string, string>, body = ''): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('sandbox admin API and UI: cross-site requests', () => {
  let sb: Sandbox;
  let host: string;
  beforeAll(async () => {
    sb = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:3000' });
    host = new URL(sb.url).host;
  });
  afterAll(() => sb.stop());

  const groups = async () => (await sb.admin.state()).counts.groups;

  it('a POST from another site (a form, or fetch with a text/plain body) is refused and changes nothing', async () => {
    const before = await groups();
    const json = JSON.stringify({ name: 'Planted' });
    for (const origin of ['http://evil.example', `http://${host.replace('127.0.0.1', 'localhost')}`, 'null']) {
      const res = await send(`${sb.url}/__admin/groups`, 'POST', { origin, 'content-type': 'text/plain' }, json);
      expect(res.status, origin).toBe(403);
      expect(JSON.parse(res.body)).toMatchObject({ error: 'forbidden', message: expect.stringContaining('Cross-site request refused') });
    }
    const group = await sb.admin.createGroup({ name: 'Target' });
    const cancel = await send(`${sb.url}/ui/groups/${group.id}/cancel`, 'POST', { origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' });
    expect(cancel.status).toBe(403);
    expect((await sb.admin.getGroup(group.id)).status).not.toBe('cancelled');
    expect(await groups()).toBe(before + 1);
  });

  it('a request for another host name (DNS rebinding to 127.0.0.1) is refused, and the API keys are not read', async () => {
    const port = new URL(sb.url).port;
    for (const method of ['GET', 'POST']) {
      const res = await send(`${sb.url}/__admin/${method === 'GET' ? 'state' : 'groups'}`, method, { host: `rebound.example:${port}`, origin: `http://rebound.example:${port}`, 'content-type': 'application/json' }, method === 'GET' ? '' : '{"name":"Rebound"}');
      expect(res.status, method).toBe(403);
      expect(res.body).toContain('is not this sandbox');
      for (const m of sb.credentials.marketplaces) expect(res.body).not.toContain(m.apiKey);
    }
    const ui = await send(`${sb.url}/ui/groups`, 'GET', { host: `rebound.example:${port}` });
    expect(ui.status).toBe(403);
  });

  it('same-origin posts (the UI\'s own buttons) and HTTP clients without Origin go through; the APIs keep their CORS', async () => {
    const before = await groups();
    const own = await send(`${sb.url}/__admin/groups`, 'POST', { origin: sb.url, 'content-type': 'application/json' }, '{"name":"Own"}');
    expect(own.status).toBe(201);
    const client = await send(`${sb.url}/__admin/groups`, 'POST', { 'content-type': 'application/json' }, '{"name":"Client"}');
    expect(client.status).toBe(201);
    expect(await groups()).toBe(before + 2);
    const page = await send(`http://localhost:${new URL(sb.url).port}/ui/groups`, 'GET', {});
    expect(page.status).toBe(200);
    // The Account API is authenticated by its keys, and answers any origin (as Maestrano's does).
    const m = sb.credentials.marketplaces[0];
    const api = await send(`${sb.url}/api/v1/account/groups`, 'GET', { origin: 'http://evil.example', authorization: basic(m?.apiId ?? '', m?.apiKey ?? '') });
    expect(api.status).toBe(200);
  });

  it('with a public URL, requests addressed to its host name are served', async () => {
    const other = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:3000', publicUrl: 'http://sandbox.test:4000' });
    try {
      const listen = new URL(other.listenUrl);
      const res = await send(`${other.listenUrl}/__admin/groups`, 'POST', { host: 'sandbox.test:4000', origin: 'http://sandbox.test:4000', 'content-type': 'application/json' }, '{"name":"Public"}');
      expect(res.status).toBe(201);
      expect((await send(`${other.listenUrl}/__admin/state`, 'GET', { host: `elsewhere.test:${listen.port}` })).status).toBe(403);
    } finally {
      await other.stop();
    }
  });
});

describe('sandbox cross-site guard: paths the UI answers', () => {
  it('a cross-site POST to a UI route spelt /ui<anything>/… (which the UI router answers) is refused', async () => {
    const sb = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:3000' });
    try {
      const group = await sb.admin.createGroup({ name: 'Target' });
      const res = await send(`${sb.url}/uix/groups/${group.id}/cancel`, 'POST', { origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' });
      expect(res.status).toBe(403);
      expect((await sb.admin.getGroup(group.id)).status).not.toBe('cancelled');
      const port = new URL(sb.url).port;
      expect((await send(`${sb.url}/uix/groups`, 'GET', { host: `rebound.example:${port}` })).status).toBe(403);
    } finally {
      await sb.stop();
    }
  });

  it('behind a proxy that rewrites Host to the listen address, the UI\'s own posts (Origin: the public URL) go through', async () => {
    const sb = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:3000', publicUrl: 'https://sandbox.test' });
    try {
      const group = await sb.admin.createGroup({ name: 'Proxied' });
      const res = await send(`${sb.listenUrl}/ui/groups/${group.id}/cancel`, 'POST', { origin: 'https://sandbox.test', 'content-type': 'application/x-www-form-urlencoded' });
      expect(res.status).toBe(302);
      expect((await sb.admin.getGroup(group.id)).status).toBe('terminated');
    } finally {
      await sb.stop();
    }
  });

  it('listening on every interface (0.0.0.0, as in a container), a rebound host name is refused too; IP literals are served', async () => {
    const sb = await startSandbox({ port: 0, host: '0.0.0.0', appUrl: 'http://127.0.0.1:3000' });
    try {
      const port = new URL(sb.listenUrl).port;
      const target = `http://127.0.0.1:${port}`;
      const rebound = await send(`${target}/__admin/groups`, 'POST', { host: `rebound.example:${port}`, origin: `http://rebound.example:${port}`, 'content-type': 'application/json' }, '{"name":"Rebound"}');
      expect(rebound.status).toBe(403);
      expect((await send(`${target}/__admin/state`, 'GET', { host: `rebound.example:${port}` })).status).toBe(403);
      expect((await send(`${target}/__admin/state`, 'GET', { host: `127.0.0.1:${port}` })).status).toBe(200);
      expect((await send(`${target}/__admin/state`, 'GET', { host: `192.168.1.20:${port}` })).status).toBe(200);
    } finally {
      await sb.stop();
    }
  });
});
