/**
 * A retry wait is a duration: a wall clock stepped back meanwhile (NTP, a VM resumed) must not
 * stretch it. The wait is armed in slices to go past setTimeout's 2^31-1 ms, and those slices
 * must not be measured on `Date.now()`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createConnecClient } from '../src/index.js';

let server: Server | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

describe('retry waits and the wall clock', () => {
  it('a clock stepped back an hour during a 50 ms backoff does not make the retry wait an hour', async () => {
    let requests = 0;
    server = createServer((_req, res) => {
      requests += 1;
      res.writeHead(requests === 1 ? 503 : 200, { 'content-type': 'application/json' });
      res.end(requests === 1 ? '{}' : JSON.stringify({ people: [{ id: 'p1' }], pagination: { total: 1 } }));
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const realNow = Date.now.bind(Date);
    let offset = 0;
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + offset);
    const client = createConnecClient({
      host: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      credentials: { apiId: 'app-id', apiKey: 'key' },
      retry: {
        limit: 1,
        baseDelayMs: 50,
        maxDelayMs: 50,
        jitter: false,
        // The clock is stepped back while the client waits.
        onRetry: () => void setTimeout(() => (offset = -3_600_000), 10),
      },
    });
    const page = await client.group('cld-1').people.list({}, { signal: AbortSignal.timeout(3_000) });
    expect(page.data).toHaveLength(1);
    expect(requests).toBe(2);
  });
});
