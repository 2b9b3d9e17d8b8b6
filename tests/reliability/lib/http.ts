/** Serves a Web `(Request) => Response` handler on a loopback port. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { toNodeListener } from '@org/maestrano-sdk';

export interface Served {
  url: string;
  /** Replaces the handler (e.g. after a simulated restart). */
  setHandler(handler: (request: Request) => Promise<Response>): void;
  close(): Promise<void>;
}

export async function serve(initial?: (request: Request) => Promise<Response>): Promise<Served> {
  let handler = initial;
  const server: Server = createServer((req, res) => {
    const h = handler;
    if (!h) {
      res.statusCode = 503;
      res.end();
      return;
    }
    void toNodeListener(h)(req, res);
  });
  // Longer than any pause between test phases: a keep-alive socket closed by the server while
  // the client reuses it is an ECONNRESET of the test's own making.
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    setHandler(h) {
      handler = h;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Answer {
  status: number;
  body: Record<string, unknown>;
}

export async function answerOf(res: Response): Promise<Answer> {
  const text = await res.text();
  try {
    const parsed: unknown = JSON.parse(text);
    return { status: res.status, body: typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : { value: parsed } };
  } catch {
    return { status: res.status, body: { text } };
  }
}
