// An Account API answer (or a proxy's error page in front of it) that echoes the request's
// credentials: the thrown error keeps the answer as `body`, and apps print and report errors
// whole. Neither the Basic token nor the api key (alone or as `id:key`) may ride along. Nor on
// an answer with a 2xx status that is not the Account API's (a captive portal or a proxy
// answering 200 with a page echoing the request headers, a JSON body without the envelope):
// served under `/ok/`, it fails as a ResponseValidationError keeping it as `body`.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createAccountClient } from '../../src/account/index.js';
import { AuthenticationError, ResponseValidationError, ServerError } from '../../src/errors/index.js';

const API_ID = 'crm-app';
const API_KEY = 'Account-Api-Key-4c3b2a';
const TOKEN = Buffer.from(`${API_ID}:${API_KEY}`).toString('base64');

let server: Server;
let url: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    const auth = req.headers.authorization ?? '';
    const decoded = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString('utf8');
    if (req.url?.startsWith('/ok/')) {
      if (req.url.includes('/groups')) {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(`<html><pre>token ${auth.replace(/^Basic /, '')}\nuser: ${decoded}</pre></html>`);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ echo: { credentials: decoded, key: API_KEY, note: `key ${API_KEY}` } }));
      return;
    }
    if (req.url?.includes('/groups')) {
      res.writeHead(401, { 'content-type': 'text/html' });
      res.end(`<html><body><h1>401</h1><pre>token ${auth.replace(/^Basic /, '')}\nuser: ${decoded}</pre></body></html>`);
      return;
    }
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ success: false, errors: { system: [`upstream refused ${decoded}`] }, data: {} }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const everything = (error: unknown) => `${String(error)}\n${inspect(error, { depth: 20 })}\n${JSON.stringify(error)}`;

it('an answer echoing the credentials does not put them on the thrown error', async () => {
  const client = createAccountClient({ api: { id: API_ID, key: API_KEY, host: url, base: '/api/v1/' } }, { retry: { limit: 0 } });
  const unauthorized = await client.groups.list().catch((e: unknown) => e);
  expect(unauthorized).toBeInstanceOf(AuthenticationError);
  expect(String((unauthorized as AuthenticationError).body)).toContain('<h1>401</h1>');
  expect(everything(unauthorized)).not.toContain(TOKEN);
  expect(everything(unauthorized)).not.toContain(API_KEY);

  const failed = await client.users.list().catch((e: unknown) => e);
  expect(failed).toBeInstanceOf(ServerError);
  expect((failed as Error).message).toContain('upstream refused');
  expect(everything(failed)).not.toContain(API_KEY);
});

it('a 2xx answer echoing the credentials (not JSON, or without the envelope) does not put them on the thrown error', async () => {
  const client = createAccountClient({ api: { id: API_ID, key: API_KEY, host: url, base: '/ok/api/v1/' } }, { retry: { limit: 0 } });
  const notJson = await client.groups.list().catch((e: unknown) => e);
  expect(notJson).toBeInstanceOf(ResponseValidationError);
  expect(String((notJson as ResponseValidationError).body)).toContain('<pre>token');
  expect(everything(notJson)).not.toContain(TOKEN);
  expect(everything(notJson)).not.toContain(API_KEY);

  const noEnvelope = await client.users.list().catch((e: unknown) => e);
  expect(noEnvelope).toBeInstanceOf(ResponseValidationError);
  expect(everything(noEnvelope)).toContain('note');
  expect(everything(noEnvelope)).not.toContain(API_KEY);
});
