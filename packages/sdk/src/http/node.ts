import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';

export type FetchHandler = (request: Request) => Promise<Response>;

export interface NodeListenerOptions {
  /**
   * Trust `X-Forwarded-Proto` / `X-Forwarded-Host` (behind a reverse proxy). Default false:
   * the URL is built from the socket and the `Host` header.
   */
  trustProxy?: boolean;
}

type NodeRequest = IncomingMessage & { originalUrl?: string; body?: unknown };


/**
 * A body parser mounted before the listener (Express's `express.urlencoded()` or `json()`,
 * say) has read the stream: rebuild the body from what it left in `req.body`. Raw and text
 * parsers leave the bytes; form and JSON parsers an object, re-encoded here (the SAML post is
 * flat string fields; a Connec! notification re-serialises to the same JSON). Undefined when
 * nothing usable was left.
 */
function bodyLeftByParser(req: NodeRequest): string | Uint8Array<ArrayBuffer> | undefined {
  const parsed = req.body;
  if (typeof parsed === 'string') return parsed;
  if (parsed instanceof Uint8Array) return new Uint8Array(parsed);
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'application/json' || type.endsWith('+json')) return JSON.stringify(parsed);
  if (type !== 'application/x-www-form-urlencoded' || Array.isArray(parsed)) return undefined;
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(parsed)) {
    if (typeof value === 'string') form.append(name, value);
    else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) for (const v of value) form.append(name, v);
    else return undefined;
  }
  return form.toString();
}

/**
 * The request as a fetch `Request`. `consumed`: the stream was read before the listener ran
 * and what the reader left is unusable; the request then has an empty body to be marked used,
 * so that the handler (the router: after authentication, logged) answers 500 `body_consumed`.
 */
function toRequest(req: NodeRequest, options: NodeListenerOptions, signal: AbortSignal): { request: Request; consumed: boolean } {
  const encrypted = (req.socket as TLSSocket).encrypted === true;
  const forwardedProto = options.trustProxy ? req.headers['x-forwarded-proto'] : undefined;
  const forwardedHost = options.trustProxy ? req.headers['x-forwarded-host'] : undefined;
  const proto = (typeof forwardedProto === 'string' ? forwardedProto.split(',')[0]?.trim() : undefined) ?? (encrypted ? 'https' : 'http');
  const host = (typeof forwardedHost === 'string' ? forwardedHost.split(',')[0]?.trim() : undefined) ?? req.headers.host ?? 'localhost';
  // Express strips its mount path from req.url; originalUrl keeps the full path. A target
  // such as `//x` is a path here, not a scheme-relative URL (throws on a bad Host: a 400).
  const target = req.originalUrl ?? req.url ?? '/';
  const origin = new URL(`${proto}://${host}`).origin;
  const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(target) ? target : `${origin}${target.startsWith('/') ? '' : '/'}${target}`);
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.set(name, value);
  }
  const method = (req.method ?? 'GET').toUpperCase();
  const hasBody = method !== 'GET' && method !== 'HEAD';
  const init: RequestInit & { duplex?: 'half' } = { method, headers, signal };
  if (hasBody && (req.readableDidRead || req.readableEnded)) {
    // A request that declared no body (a webhook DELETE) lost nothing when a reader drained it.
    const declaredEmpty = req.headers['content-length'] === '0' || (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined);
    const body = bodyLeftByParser(req) ?? (declaredEmpty ? '' : undefined);
    if (body === undefined) {
      for (const name of ['content-length', 'content-encoding', 'transfer-encoding']) headers.delete(name);
      return { request: new Request(url, { ...init, body: '' }), consumed: true };
    }
    // The rebuilt body is plain (a parser inflated it) and may differ in length from the original.
    for (const name of ['content-length', 'content-encoding', 'transfer-encoding']) headers.delete(name);
    init.body = body;
  } else if (hasBody) {
    init.body = Readable.toWeb(req) as ReadableStream<Uint8Array>;
    init.duplex = 'half';
  }
  return { request: new Request(url, init), consumed: false };
}

async function writeResponse(req: IncomingMessage, res: ServerResponse, response: Response): Promise<void> {
  const method = (req.method ?? 'GET').toUpperCase();
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') headers[name] = value;
  });
  // Answered before its body was received whole (408 on a stalled body, 413, 401): the rest of
  // the body will never be read, so the connection is closed once the answer is written rather
  // than kept open idle for Node's keep-alive timeout.
  if (!req.complete) headers['connection'] = 'close';
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  res.writeHead(response.status, response.statusText || undefined, headers);
  if (method === 'HEAD' || response.body === null) {
    await response.body?.cancel().catch(() => {});
    res.end();
    return;
  }
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!res.write(value)) {
      // Wait for the socket to drain, or stop when the client went away (no hang).
      const open = await new Promise<boolean>((resolve) => {
        const onDrain = () => settle(true);
        const onClose = () => settle(false);
        const settle = (v: boolean) => {
          res.off('drain', onDrain);
          res.off('close', onClose);
          resolve(v);
        };
        res.once('drain', onDrain);
        res.once('close', onClose);
      });
      if (!open) {
        await reader.cancel().catch(() => {});
        return;
      }
    }
  }
  res.end();
}

/**
 * Adapts a fetch-style handler (`mno.handler`) to a node:http / Express listener. The full
 * original URL is kept under Express mounts; multiple `Set-Cookie` headers are preserved; a
 * body already read by a parser mounted first is rebuilt from `req.body` (raw, text, form or
 * JSON); when nothing usable is left, the handler gets the request with its body used, which
 * `mno.handler` answers (after authentication) with a logged 500 `body_consumed` that says to
 * mount the handler first. An answer given before the body was received whole (408, 413, 401)
 * closes the connection once written. An unexpected failure answers a bare 500 without details.
 */
export function toNodeListener(
  handler: FetchHandler,
  options: NodeListenerOptions = {},
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const controller = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) controller.abort();
    });
    let request: Request;
    try {
      const built = toRequest(req, options, controller.signal);
      request = built.request;
      // Read before the listener ran, nothing usable left: handed over with its body used, so
      // that the router answers as through the fetch-style mount (after authentication, a 500
      // `body_consumed` that says how to fix it, logged with the tenant and the route).
      if (built.consumed) await request.arrayBuffer();
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"error":"bad_request","message":"Invalid request URL"}');
      return;
    }
    try {
      const response = await handler(request);
      await writeResponse(req, res, response);
    } catch {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end('{"error":"internal_error","message":"Internal error"}');
      } else {
        res.destroy();
      }
    }
  };
}
