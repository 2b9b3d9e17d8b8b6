// A server (or a proxy in front of Connec!) whose error page echoes the request's headers: the
// thrown error keeps the answer as `body` for diagnosis, and apps print and report errors whole
// (`console.error(err)`, an error tracker's JSON). The client's own credentials must not ride
// along: neither the Basic token nor the api key it encodes. Nor on an answer with a 2xx status
// that is not Connec!'s (a captive portal or a proxy answering 200 with a page echoing the
// request headers, JSON of another shape): served for group `cld-ok`, it fails as a
// ResponseValidationError keeping it as `body`.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AuthenticationError, createConnecClient, ResponseValidationError, ServerError } from '../src/index.js';

const API_ID = 'crm-app';
const API_KEY = 'Connec-Api-Key-9f8e7d';
const TOKEN = Buffer.from(`${API_ID}:${API_KEY}`).toString('base64');

let server: Server;
let url: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    const auth = req.headers.authorization ?? '';
    const decoded = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString('utf8');
    if (req.url?.includes('/cld-ok/')) {
      if (req.url.includes('/people')) {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(`<html><pre>Authorization: ${auth}\nuser: ${decoded}</pre></html>`);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ echo: { credentials: decoded, key: API_KEY } }));
      return;
    }
    if (req.url?.includes('/people')) {
      // A proxy's HTML error page listing the request headers (and the credentials it decoded).
      res.writeHead(401, { 'content-type': 'text/html' });
      res.end(`<html><body><h1>401</h1><pre>Authorization: ${auth}\nuser: ${decoded}</pre></body></html>`);
      return;
    }
    // A JSON error echoing the request, as debugging gateways do.
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ title: 'upstream failed' }], request: { headers: { authorization: auth }, credentials: decoded } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function everything(error: unknown): string {
  return `${String(error)}\n${inspect(error, { depth: 20 })}\n${JSON.stringify(error)}`;
}

it('an error page echoing the Authorization header does not put the credentials on the thrown error', async () => {
  const client = createConnecClient({ host: url, credentials: { apiId: API_ID, apiKey: API_KEY }, retry: { limit: 0 } });
  const unauthorized = await client.group('cld-1').people.list().catch((e: unknown) => e);
  expect(unauthorized).toBeInstanceOf(AuthenticationError);
  // The page is kept, for diagnosis.
  expect(String((unauthorized as AuthenticationError).body)).toContain('<h1>401</h1>');
  expect(everything(unauthorized)).not.toContain(TOKEN);
  expect(everything(unauthorized)).not.toContain(API_KEY);

  const failed = await client.group('cld-1').organizations.list().catch((e: unknown) => e);
  expect(failed).toBeInstanceOf(ServerError);
  expect((failed as ServerError).body).toMatchObject({ errors: [{ title: 'upstream failed' }] });
  expect(everything(failed)).not.toContain(TOKEN);
  expect(everything(failed)).not.toContain(API_KEY);
});

it('a 2xx answer echoing the credentials does not put them on the thrown error', async () => {
  const client = createConnecClient({ host: url, credentials: { apiId: API_ID, apiKey: API_KEY }, retry: { limit: 0 } });
  const notJson = await client.group('cld-ok').people.list().catch((e: unknown) => e);
  expect(notJson).toBeInstanceOf(ResponseValidationError);
  expect(String((notJson as ResponseValidationError).body)).toContain('<pre>Authorization');
  expect(everything(notJson)).not.toContain(TOKEN);
  expect(everything(notJson)).not.toContain(API_KEY);

  const wrongShape = await client.group('cld-ok').organizations.list().catch((e: unknown) => e);
  expect(wrongShape).toBeInstanceOf(ResponseValidationError);
  expect(everything(wrongShape)).toContain('echo');
  expect(everything(wrongShape)).not.toContain(API_KEY);
});
