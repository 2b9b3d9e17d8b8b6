/** Default request body limit: 1 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/**
 * Default body limit of the Connec! notification route: a notification is a batch of changed
 * records (invoices with their lines, say), answered only once every record is stored, and
 * Connec! does not retry a refused one; the route reads a body only after its credentials are
 * checked. 16 MiB.
 */
export const DEFAULT_MAX_NOTIFICATION_BODY_BYTES = 16 * 1024 * 1024;

export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`Request body exceeds ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/**
 * Reads a request body into memory, refusing more than `limit` bytes: a declared
 * `Content-Length` above the limit is refused before reading, and a streamed body is cut
 * off as soon as it passes the limit (the stream is cancelled).
 */
/** The most a declared `Content-Length` makes `readLimitedBody` allocate before bytes arrive. */
const INITIAL_BUFFER_MAX = 64 * 1024;

export async function readLimitedBody(request: Request, limit: number): Promise<Uint8Array<ArrayBuffer> | null> {
  const header = request.headers.get('content-length');
  const declared = header !== null && /^\d+$/.test(header) ? Number(header) : null;
  if (declared !== null && declared > limit) {
    await request.body?.cancel().catch(() => {});
    throw new BodyTooLargeError(limit);
  }
  if (request.body === null) return null;
  const reader = request.body.getReader();
  // Chunks are copied into one growing buffer as they arrive, never kept: a sender of a
  // million one-byte chunks would otherwise make the process hold a million chunk objects
  // (hundreds of MB for a body within the limit). A declared length is only a claim: trusted
  // up to 64 KiB, past that memory follows the bytes received (an unauthenticated caller
  // declaring the limit on many idle connections would otherwise pin it on each).
  let buffer = new Uint8Array(Math.min(limit, Math.max(Math.min(declared ?? 0, INITIAL_BUFFER_MAX), 16 * 1024)));
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (total + value.byteLength > limit) {
      await reader.cancel().catch(() => {});
      throw new BodyTooLargeError(limit);
    }
    if (total + value.byteLength > buffer.byteLength) {
      const grown = new Uint8Array(Math.min(limit, Math.max(buffer.byteLength * 2, total + value.byteLength)));
      grown.set(buffer.subarray(0, total));
      buffer = grown;
    }
    buffer.set(value, total);
    total += value.byteLength;
  }
  return total === buffer.byteLength ? buffer : buffer.slice(0, total);
}

/** A copy of `request` whose body is the already-read `body` (safe to read again). */
export function withBufferedBody(request: Request, body: Uint8Array<ArrayBuffer> | null): Request {
  return new Request(request.url, {
    method: request.method,
    headers: request.headers,
    body: body && body.byteLength > 0 ? body : null,
    signal: request.signal,
  });
}
