// The SAML ACS (`POST …/saml/consume`) is the one route that reads a body from anyone on the
// internet (no credentials). A caller that only DECLARES a body (`Content-Length` at the limit)
// and then sends nothing must not make the process hold memory for bytes it never sent:
// otherwise a few hundred bytes of headers per connection pin 1 MiB each (x5,000 amplification),
// for as long as the server's request timeout (Node: 300 s by default).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import { createMaestrano, memoryAdapter, toNodeListener } from '@org/maestrano-sdk';
import { createTestIdp } from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const idp = createTestIdp();
const mno = createMaestrano({
  tenants: [idp.marketplace({ name: 'one', appHost: 'http://127.0.0.1:3000', apiId: 'app-1', apiKey: 'key-one' })],
  storage: memoryAdapter(),
  provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
  onLogin: () => new Response(null, { status: 303 }),
});

let server: Server;
let port: number;
const sockets: Socket[] = [];

beforeAll(async () => {
  server = createServer(toNodeListener(mno.handler));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('an unauthenticated POST to the ACS that declares a body it does not send', () => {
  it('does not make the process allocate the declared length up front', { timeout: 20_000 }, async () => {
    const connections = 64;
    const declared = 1024 * 1024; // the default maxBodyBytes: accepted as within the limit
    await sleep(100);
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < connections; i++) {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => {});
      sockets.push(socket);
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(
        'POST /maestrano/auth/saml/consume/one HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
          `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${declared}\r\n\r\nSAMLResponse=`,
      );
    }
    // Let every request reach the handler (which then waits for the rest of the body).
    await sleep(500);
    const grown = process.memoryUsage().arrayBuffers - before;
    // 64 connections sent ~13 bytes of body each: the memory held should be a few KB per
    // connection (what arrived, plus stream buffers), not the 1 MiB each one merely announced.
    expect(Math.round(grown / 1024 / 1024), 'MiB of ArrayBuffer memory held for 64 bodies that sent 13 bytes each').toBeLessThan(16);
  });
});
