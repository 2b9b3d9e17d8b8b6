/** Default request body limit: 1 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/**
 * Default body limit of the Connec! notification route: a notification is a batch of changed
 * records (invoices with their lines, say), answered only once every record is stored, and one
 * refused as too large is lost (Connec! cannot send it smaller); the route reads a body only
 * after its credentials are checked. 16 MiB.
 */
export const DEFAULT_MAX_NOTIFICATION_BODY_BYTES = 16 * 1024 * 1024;
/**
 * Default body read deadline: 30 s. A caller that sends headers, then trickles or stalls its
 * body, otherwise holds the connection and the bytes received for as long as the server lets it
 * (Node: `requestTimeout`, 300 s by default; some fetch-style runtimes: forever). For anyone's
 * requests it bounds the whole body; for Maestrano's (routes checked with the tenant's Basic
 * credentials first) only the pauses between two chunks, so that a slow but steady upload of a
 * large notification, which Connec! would not send again, is never cut.
 */
export const DEFAULT_BODY_READ_TIMEOUT_MS = 30_000;

export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`Request body exceeds ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

export class BodyReadTimeoutError extends Error {
  constructor(
    readonly timeoutMs: number,
    readonly idle = false,
  ) {
    super(idle ? `Request body stalled: no bytes received for ${timeoutMs} ms` : `Request body not received within ${timeoutMs} ms`);
    this.name = 'BodyReadTimeoutError';
  }
}

/** The most a declared `Content-Length` makes `readLimitedBody` allocate before bytes arrive. */
const INITIAL_BUFFER_MAX = 64 * 1024;

/**
 * Reads a request body into memory, refusing more than `limit` bytes: a declared
 * `Content-Length` above the limit is refused before reading, and a streamed body is cut
 * off as soon as it passes the limit (the stream is cancelled). A body not received whole
 * within `timeoutMs` of the call (stalled, or trickled) is cut off the same way
 * (`BodyReadTimeoutError`): the stream is cancelled and what was received is dropped. With
 * `idle`, `timeoutMs` bounds each pause between two chunks instead of the whole body.
 */
export async function readLimitedBody(
  request: Pick<Request, 'headers' | 'body'>,
  limit: number,
  timeoutMs?: number,
  idle = false,
): Promise<Uint8Array<ArrayBuffer> | null> {
  const header = request.headers.get('content-length');
  const declared = header !== null && /^\d+$/.test(header) ? Number(header) : null;
  if (declared !== null && declared > limit) {
    await request.body?.cancel().catch(() => {});
    throw new BodyTooLargeError(limit);
  }
  if (request.body === null) return null;
  const reader = request.body.getReader();
  // Past the deadline the stream is cancelled, which ends the pending read (done): the read
  // loop then stops as at the end of the body, and the body is refused. A flag, not a race of
  // each read against a timer promise: that would keep one reaction per chunk until the end.
  let timedOut = false;
  const expire = () => {
    timedOut = true;
    reader.cancel(new BodyReadTimeoutError(timeoutMs as number, idle)).catch(() => {});
  };
  let timer = timeoutMs === undefined ? undefined : setTimeout(expire, timeoutMs);
  // Idle: each chunk received starts the wait again (`refresh` re-arms the same timer).
  const progressed = idle && timer !== undefined ? () => timer?.refresh() : undefined;
  try {
    const body = await readAll(reader, limit, declared, progressed);
    if (timedOut) throw new BodyReadTimeoutError(timeoutMs!, idle);
    return body;
  } catch (error) {
    // A read that failed because the deadline cancelled the stream is the deadline's doing.
    throw timedOut ? new BodyReadTimeoutError(timeoutMs!, idle) : error;
  } finally {
    clearTimeout(timer);
    timer = undefined;
  }
}

async function readAll(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  limit: number,
  declared: number | null,
  progressed: (() => void) | undefined,
): Promise<Uint8Array<ArrayBuffer>> {
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
    progressed?.();
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

/** An upstream answer (Account API, developer platform, IdP session check) larger than its limit. */
export class AnswerTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`The answer exceeds ${limit} bytes`);
    this.name = 'AnswerTooLargeError';
  }
}

/**
 * An upstream answer's text, refusing more than `limit` bytes (`AnswerTooLargeError`, the
 * stream cancelled): `response.text()` holds whatever a broken or hostile upstream sends, and
 * a timeout bounds that in time only. Decoded as `response.text()` decodes (UTF-8, BOM dropped).
 */
export async function readLimitedAnswer(response: Pick<Response, 'headers' | 'body'>, limit: number): Promise<string> {
  let bytes: Uint8Array<ArrayBuffer> | null;
  try {
    bytes = await readLimitedBody(response, limit);
  } catch (error) {
    throw error instanceof BodyTooLargeError ? new AnswerTooLargeError(limit) : error;
  }
  return bytes === null ? '' : new TextDecoder().decode(bytes);
}
