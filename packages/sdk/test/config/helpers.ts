import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, type Logger } from '@org/maestrano-sdk';
import { expect } from 'vitest';

/** Runs `fn`, which must throw a `ConfigError`, and returns it. */
export function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

export interface LoopbackPlatform {
  /** `http://127.0.0.1:<port>` */
  host: string;
  /** Requests received so far. */
  requests: IncomingMessage[];
  /** Answers each request (numbered from 1). */
  handle: (n: number, req: IncomingMessage, res: ServerResponse) => void;
  close(): Promise<void>;
}

/** A developer platform on a real loopback HTTP server; `handle` answers each request. */
export async function startPlatform(handle: LoopbackPlatform['handle']): Promise<LoopbackPlatform> {
  const platform: LoopbackPlatform = {
    host: '',
    requests: [],
    handle,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((req, res) => {
    platform.requests.push(req);
    // No keep-alive: a test that breaks connections must not leave a dead one for the next request.
    res.setHeader('connection', 'close');
    platform.handle(platform.requests.length, req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  platform.host = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return platform;
}

/** A log line a `recordingLogger` kept. */
export type LogEntry = { level: string; message: string; fields?: Record<string, unknown> };

/** A logger that keeps every line, to assert on what was logged. */
export function recordingLogger(): { logger: Logger; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const push = (level: string) => (message: string, fields?: Record<string, unknown>) => entries.push({ level, message, fields });
  return { entries, logger: { debug: push('debug'), info: push('info'), warn: push('warn'), error: push('error') } };
}
