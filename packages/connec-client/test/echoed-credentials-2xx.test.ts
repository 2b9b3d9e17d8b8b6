// An answer with a 2xx status that is not Connec!'s (a captive portal or a proxy answering 200 with
// a page that echoes the request headers, JSON of another shape, a batch result echoing them): the
// thrown error keeps it as `body`, and apps print and report errors whole. The client's own
// credentials must not ride along, as for error statuses.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createConnecClient, ResponseValidationError } from '../src/index.js';

const API_ID = 'crm-app';
const API_KEY = 'Connec-Api-Key-9f8e7d';
const TOKEN = Buffer.from(`${API_ID}:${API_KEY}`).toString('base64');

let server: Server;
let url: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    const auth = req.headers.authorization ?? '';
    const decoded = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString('utf8');
    if (req.url?.includes('/people')) {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<html><pre>Authorization: ${auth}\nuser: ${decoded}</pre></html>`);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ echo: { credentials: decoded, key: API_KEY } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const everything = (error: unknown) => `${String(error)}\n${inspect(error, { depth: 20 })}\n${JSON.stringify(error)}`;

it('a 2xx answer echoing the credentials does not put them on the thrown error', async () => {
  const client = createConnecClient({ host: url, credentials: { apiId: API_ID, apiKey: API_KEY }, retry: { limit: 0 } });
  const notJson = await client.group('cld-1').people.list().catch((e: unknown) => e);
  expect(notJson).toBeInstanceOf(ResponseValidationError);
  expect(String((notJson as ResponseValidationError).body)).toContain('<pre>Authorization');
  expect(everything(notJson)).not.toContain(TOKEN);
  expect(everything(notJson)).not.toContain(API_KEY);

  const wrongShape = await client.group('cld-1').organizations.list().catch((e: unknown) => e);
  expect(wrongShape).toBeInstanceOf(ResponseValidationError);
  expect(everything(wrongShape)).toContain('echo');
  expect(everything(wrongShape)).not.toContain(API_KEY);
});
