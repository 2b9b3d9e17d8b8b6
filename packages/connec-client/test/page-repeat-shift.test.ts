/**
 * Offset pagination over a collection that changes while it is listed: a record updated between
 * two page reads of a listing sorted by `updated_at desc` moves to the front and shifts the others
 * back, so the next offset starts with the record just read. That is one repeated page, not a
 * server that ignores `$skip`; the listing must go on (and end).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createConnecClient } from '../src/index.js';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

describe('a page repeated once by a concurrent update', () => {
  it('pages of one record sorted by updated_at desc: an update between two reads does not fail the listing', async () => {
    // Newest first, like `$orderby=updated_at desc`.
    const order = ['p3', 'p2', 'p1'];
    let requests = 0;
    server = createServer((req, res) => {
      requests += 1;
      const q = new URL(req.url ?? '', 'http://x').searchParams;
      const skip = Number(q.get('$skip') ?? 0);
      const top = Number(q.get('$top') ?? 100);
      const page = order.slice(skip, skip + top).map((id) => ({ id, first_name: id }));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ people: page, pagination: { total: order.length } }));
      // Someone edits p2 right after the first page was served: it moves to the front.
      if (requests === 1) order.splice(0, order.length, 'p2', 'p3', 'p1');
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const client = createConnecClient({
      host: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      credentials: { apiId: 'app-id', apiKey: 'key' },
    });
    const ids = (await client.group('cld-1').people.list({ top: 1, orderBy: 'updated_at DESC' }).toArray({ limit: 100 })).map((p) => p.id);
    // Offset pagination over changing data may repeat a page (not handed over twice); it must not throw.
    expect(ids).toEqual(['p3', 'p1']);
  });
});
