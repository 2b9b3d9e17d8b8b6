// An answer with a 2xx status that is not the Account API's (a captive portal or a proxy in front
// of it answering 200 with a page that echoes the request headers, a JSON body without the
// envelope): the thrown ResponseValidationError keeps it as `body`, and apps print and report
// errors whole. The client's own credentials must not ride along, as for error statuses.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createAccountClient } from '../../src/account/index.js';
import { ResponseValidationError } from '../../src/errors/index.js';

const API_ID = 'crm-app';
const API_KEY = 'Account-Api-Key-4c3b2a';
const TOKEN = Buffer.from(`${API_ID}:${API_KEY}`).toString('base64');

let server: Server;
let url: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    const auth = req.headers.authorization ?? '';
    const decoded = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString('utf8');
    if (req.url?.includes('/groups')) {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<html><pre>token ${auth.replace(/^Basic /, '')}\nuser: ${decoded}</pre></html>`);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ echo: { credentials: decoded, key: API_KEY, note: `key ${API_KEY}` } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const everything = (error: unknown) => `${String(error)}\n${inspect(error, { depth: 20 })}\n${JSON.stringify(error)}`;

it('a 2xx answer echoing the credentials (not JSON, or without the envelope) does not put them on the thrown error', async () => {
  const client = createAccountClient({ api: { id: API_ID, key: API_KEY, host: url, base: '/api/v1/' } }, { retry: { limit: 0 } });
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
