import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP proxy in front of a database server, for outage tests against a server the
 * test cannot stop (a shared MongoDB): `cut()` closes the listener and every open connection
 * (the database becomes unreachable: connections are reset, new ones refused), `restore()`
 * listens again on the same port.
 */
export class TcpProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(): Promise<void> {
    const server = createServer((client) => {
      const upstream = createConnection(this.targetPort, this.targetHost);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (typeof address === 'object' && address) this.port = address.port;
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Resets every open connection (a network blip) but keeps listening: new connections work. */
  reset(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  restore(): Promise<void> {
    return this.start();
  }

  /** `url` with its host and port replaced by the proxy's. */
  rewrite(url: string): string {
    return url.replace(/^(mongodb:\/\/(?:[^@/]*@)?)[^/]+/, `$1127.0.0.1:${this.port}`);
  }
}

/** Host and port of a single-host `mongodb://` URL. */
export function hostPort(url: string): { host: string; port: number } {
  const match = /^mongodb:\/\/(?:[^@/]*@)?([^/:,]+)(?::(\d+))?(?:\/|$|\?)/.exec(url);
  if (!match?.[1]) throw new Error('outage tests need a single-host mongodb:// URL');
  return { host: match[1], port: Number(match[2] ?? 27017) };
}
