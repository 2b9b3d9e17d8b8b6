/**
 * Answers of upstreams the SDK reads whole (the Account API, the developer platform's
 * marketplaces document) are read up to a limit: a broken or hostile upstream streaming without
 * end is cut off with a typed error, its stream cancelled, instead of filling the process's
 * memory until the timeout. The upstreams here stream 1 MiB chunks for as long as they are read.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, tenantsFromDevPlatform } from '@org/maestrano-sdk';
import { afterEach, expect, it } from 'vitest';
import { createAccountClient } from '../../src/account/index.js';
import { ConnectionError } from '../../src/errors/index.js';

const MIB = 1024 * 1024;
const chunk = new Uint8Array(MIB).fill(0x61);

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

it('the Account API client stops reading an endless 200 answer past 16 MiB: a ConnectionError, the connection closed', async () => {
  let written = 0;
  let closed: () => void = () => {};
  const gone = new Promise<void>((resolve) => {
    closed = resolve;
  });
  server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.on('close', () => closed());
    const pump = () => {
      while (!res.destroyed && written < 200 * MIB) {
        written += MIB;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
    };
    pump();
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = createAccountClient({ api: { id: 'app', key: 'account-key-123', host: url, base: '/api/v1/' } }, { retry: { limit: 0 } });
  const error = await client.groups.list().catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ConnectionError);
  expect((error as Error).message).toContain(`exceeds ${16 * MIB} bytes`);
  await gone;
  // What the server got out before the client hung up: the limit, plus what sockets buffer.
  expect(written).toBeLessThan(100 * MIB);
});

it('tenantsFromDevPlatform refuses a marketplaces document past 16 MiB with a ConfigError, its stream cancelled', async () => {
  let pulled = 0;
  let cancelled = false;
  const endless = () =>
    new Response(
      new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled++;
          controller.enqueue(chunk);
        },
        cancel() {
          cancelled = true;
        },
      }),
      { status: 200, headers: { 'content-type': 'application/json' } },
    );
  const error = await tenantsFromDevPlatform({ host: 'http://127.0.0.1:9', key: 'env-key', secret: 'env-secret', refreshMs: 0, fetch: async () => endless() }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ConfigError);
  expect((error as Error).message).toBe(`The developer platform at http://127.0.0.1:9/api/config/v1/marketplaces answered with more than ${16 * MIB} bytes`);
  expect(cancelled).toBe(true);
  expect(pulled).toBeLessThanOrEqual(18);
});
