/**
 * The client against broken or hostile servers: raw loopback HTTP servers that redirect elsewhere,
 * stream without end, or page inconsistently.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, createConnecClient, isMaestranoError, ResponseValidationError } from '../src/index.js';

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;
interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  body: string;
}
const servers: Server[] = [];

async function serve(handler: Handler): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, body: Buffer.concat(chunks).toString() });
      handler(req, res, seen.length);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

const client = (host: string, extra: Record<string, unknown> = {}) =>
  createConnecClient({
    host,
    credentials: { apiId: 'app-id', apiKey: 'sekret-key' },
    retry: { baseDelayMs: 1, maxDelayMs: 5, jitter: false },
    ...extra,
  });

async function failure(promise: PromiseLike<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

const people = (n: number, from = 0, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ people: Array.from({ length: n }, (_, i) => ({ id: `p${from + i}`, first_name: `P${from + i}` })), ...extra });

describe('redirects to another origin', () => {
  it('a 307 on create does not forward the record to another host', async () => {
    const other = await serve((_req, res) => {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ people: { id: 'evil', first_name: 'Jane' } }));
    });
    const connec = await serve((req, res) => {
      res.writeHead(307, { location: `${other.url}${req.url}` });
      res.end();
    });
    const error = await failure(client(connec.url).group('cld-1').people.create({ first_name: 'Jane', last_name: 'Secret-PII' }));
    // The customer's record must never reach a host the app was not configured with.
    expect(other.seen).toHaveLength(0);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 307, method: 'POST' });
  });

  it('a 302 on list does not hand over another host’s records as Connec! data', async () => {
    const other = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(people(1, 0, { pagination: { total: 1 } }));
    });
    const connec = await serve((req, res) => {
      res.writeHead(302, { location: `${other.url}${req.url}` });
      res.end();
    });
    const error = await failure(client(connec.url).group('cld-1').people.list());
    expect(other.seen).toHaveLength(0);
    expect(isMaestranoError(error)).toBe(true);
    expect(error).toMatchObject({ status: 302 });
  });
});

describe('response size', () => {
  it('a body that never ends is refused at a size limit, not buffered until the timeout', { timeout: 30_000 }, async () => {
    let sent = 0;
    const CAP = 300 * 1024 * 1024; // the test server stops here and stalls, to keep the machine safe
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    const connec = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"people":[');
      const pump = () => {
        while (sent < CAP) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
      };
      res.on('close', () => res.removeAllListeners('drain'));
      pump();
    });
    const started = Date.now();
    const error = await failure(client(connec.url, { timeoutMs: 10_000 }).group('cld-1').people.list({}, { retry: 0 }));
    expect(isMaestranoError(error)).toBe(true);
    // Not a timeout after buffering hundreds of megabytes: refused once it is larger than any page.
    expect(error).not.toMatchObject({ code: 'connection_timeout' });
    expect(Date.now() - started).toBeLessThan(8_000);
    expect(sent).toBeLessThan(CAP);
  });
});

describe('pagination against inconsistent servers', () => {
  it('an empty page before the total it announces is an error, not a silently short listing', async () => {
    const connec = await serve((req, res) => {
      const skip = Number(new URL(req.url ?? '', 'http://x').searchParams.get('$skip') ?? 0);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(skip === 0 ? people(2, 0, { pagination: { total: 6 } }) : people(0, 0, { pagination: { total: 6 } }));
    });
    const result = await failure(client(connec.url).group('cld-1').people.list({ top: 2 }).toArray({ limit: 100 }));
    expect(result).toBeInstanceOf(ResponseValidationError);
  });

  it('an empty page that still carries a `next` link ends the listing instead of being followed page after page', async () => {
    // A server (or gateway) that writes `next` on every page, the empty ones past the end too:
    // the records end at its own `total`, but each empty page links to one more offset.
    const connec = await serve((req, res, n) => {
      if (n > 20) {
        res.writeHead(500);
        res.end();
        return;
      }
      const q = new URL(req.url ?? '', 'http://x').searchParams;
      const skip = Number(q.get('$skip') ?? 0);
      res.writeHead(200, { 'content-type': 'application/json' });
      const next = `/api/v2/cld-1/people?%24skip=${skip + 1}&%24top=1`;
      res.end(skip < 2 ? people(1, skip, { pagination: { total: 2, next } }) : people(0, 0, { pagination: { total: 2, next } }));
    });
    const ids = (await client(connec.url, { retry: 0 }).group('cld-1').people.list({ top: 1 }).toArray({ limit: 100 })).map((p) => p.id);
    expect(ids).toEqual(['p0', 'p1']);
    expect(connec.seen.length).toBeLessThanOrEqual(3);
  });

  it('empty pages with advancing `next` links and no total are not followed forever', async () => {
    const connec = await serve((req, res, n) => {
      if (n > 20) {
        res.writeHead(500);
        res.end();
        return;
      }
      const skip = Number(new URL(req.url ?? '', 'http://x').searchParams.get('$skip') ?? 0);
      res.writeHead(200, { 'content-type': 'application/json' });
      const next = `/api/v2/cld-1/people?%24skip=${skip + 1}&%24top=1`;
      res.end(skip === 0 ? people(1, 0, { pagination: { next } }) : people(0, 0, { pagination: { next } }));
    });
    const ids = (await client(connec.url, { retry: 0 }).group('cld-1').people.list({ top: 1 }).toArray({ limit: 100 })).map((p) => p.id);
    expect(ids).toEqual(['p0']);
    expect(connec.seen.length).toBeLessThanOrEqual(2);
  });

  it('a `pagination.next` that is not a URL fails as ResponseValidationError, not a raw TypeError', async () => {
    const connec = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(people(1, 0, { pagination: { total: 5, next: 'https://api-connec.maestrano.com:99999/api/v2/cld-1/people?%24skip=1' } }));
    });
    const error = await failure(client(connec.url).group('cld-1').people.list({ top: 1 }).toArray({ limit: 100 }));
    // README: every failure is a MaestranoError.
    expect(isMaestranoError(error)).toBe(true);
    expect(error).toBeInstanceOf(ResponseValidationError);
  });

  it('pagination loop errors do not carry a session token from the query (as every other error does not)', async () => {
    // PROTOCOL §6.1: front ends call Connec! with `sso_session=<token>` in the query.
    const connec = await serve((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // `next` points back at the page just served.
      res.end(people(1, 0, { pagination: { total: 5, next: req.url } }));
    });
    const looping = await failure(
      client(connec.url).group('cld-1').people.list({ top: 1, params: { sso_session: 'tok-SECRET-123' } }).toArray({ limit: 100 }),
    );
    expect(looping).toBeInstanceOf(ResponseValidationError);
    expect(String((looping as Error).message)).not.toContain('tok-SECRET-123');

    const same = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(people(1));
    });
    const repeating = await failure(
      client(same.url).group('cld-1').people.list({ top: 1, params: { sso_session: 'tok-SECRET-123' } }).toArray({ limit: 100 }),
    );
    expect(repeating).toBeInstanceOf(ResponseValidationError);
    expect(String((repeating as Error).message)).not.toContain('tok-SECRET-123');
  });

  it('a server that ignores $skip (the same page again and again) is detected, not iterated forever', async () => {
    const connec = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(people(2));
    });
    const seen: string[] = [];
    const error = await failure(
      (async () => {
        for await (const person of client(connec.url).group('cld-1').people.list({ top: 2 })) {
          seen.push(String(person.id));
          if (seen.length > 50) throw new Error('still iterating duplicates');
        }
      })(),
    );
    expect(error).toBeInstanceOf(ResponseValidationError);
    expect(seen).toEqual(['p0', 'p1']);
  });
});

describe('retry waits', () => {
  it('a Retry-After longer than setTimeout can wait (2^31-1 ms) is waited for, not turned into an immediate retry', async () => {
    const connec = await serve((_req, res) => {
      res.writeHead(429, { 'retry-after': String(30 * 24 * 3600) }); // 30 days
      res.end();
    });
    // A caller that accepts up to 60 days of Retry-After, and gives up after half a second.
    const sixtyDays = 60 * 24 * 3600 * 1000;
    const error = await failure(
      client(connec.url, { retry: { limit: 2, maxRetryAfterMs: sixtyDays } })
        .group('cld-1')
        .people.list({}, { signal: AbortSignal.timeout(500) }),
    );
    expect(connec.seen).toHaveLength(1);
    expect(error).toMatchObject({ code: 'connection_aborted' });
  });
});
