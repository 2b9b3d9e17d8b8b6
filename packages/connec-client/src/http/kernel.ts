/**
 * The one place where HTTP happens: sends requests with fetch, runs the retry loop, enforces the
 * per-attempt timeout (covering the whole body, not only the headers), and translates every
 * failure into the error taxonomy. No fetch error escapes from here.
 *
 * Requests go straight to `fetch` rather than through ky: every ky feature this client would use
 * (retry, timeout, error classes) is superseded here (ky's timeout stops at the headers and its
 * retries do not cover body reads), and its per-request cost (merged options, two extra Request
 * objects, chained abort signals) measured at about half a millisecond per call, which made
 * listing roughly 2x slower than a bare fetch loop in bench/connec-client.
 */
import {
  type ApiService,
  apiErrorFromStatus,
  ConnectionError,
  type ConnectionFailure,
  isMaestranoError,
  type MaestranoError,
  PayloadValidationError,
  parseRetryAfter,
  redactUrl,
  ResponseValidationError,
  serviceNames,
} from '../errors.js';
import { describeIssues, summarizeIssues } from '../internal/issues.js';
import { backoffDelay, isRetryableStatus, type ResolvedRetryPolicy, type RetryPolicy, RetryOptionSchema, resolveRetryPolicy } from './retry.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT';

/** The longest finite timeout: what `setTimeout` can wait (2^31-1 ms, about 24.8 days). */
export const MAX_TIMEOUT_MS = 2_147_483_647;
/** Largest response body read (64 MiB): far above any page, and a bound on what a broken server can make the client buffer. */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
export const TIMEOUT_RULE = `timeoutMs must be an integer from 1 to ${MAX_TIMEOUT_MS} ms, or Infinity for no timeout`;

/** The rule for every `timeoutMs`, the client's and each call's: an integer in `[1, 2^31-1]`, or `Infinity` (no timeout). */
export function isValidTimeout(value: unknown): value is number {
  return value === Number.POSITIVE_INFINITY || (Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_TIMEOUT_MS);
}

function callTimeout(value: number): number {
  if (isValidTimeout(value)) return value;
  throw new PayloadValidationError(`Invalid request options: ${TIMEOUT_RULE}`, {
    issues: [{ path: 'timeoutMs', message: TIMEOUT_RULE }],
  });
}

/** A per-call `retry` checked like the client's: `retry: -1`, `Infinity` or a misspelt key must not go out unnoticed. */
function callRetry(value: RetryPolicy | number | undefined): RetryPolicy | number | undefined {
  if (value === undefined) return undefined;
  const parsed = RetryOptionSchema.safeParse(value);
  if (parsed.success) return value;
  const issues = summarizeIssues(parsed.error.issues, ['retry']);
  throw new PayloadValidationError(`Invalid request options: ${describeIssues(issues)}`, { issues });
}

/**
 * Check a call's `timeoutMs` and `retry` as {@link HttpKernel.request} does, for callers that must
 * refuse bad options before doing anything else (a batch, before its first chunk). Throws
 * `PayloadValidationError`.
 */
export function checkRequestOptions(options: RequestOptions): void {
  if (options.timeoutMs !== undefined) callTimeout(options.timeoutMs);
  callRetry(options.retry);
}

/** Options every call accepts as its last argument. */
export interface RequestOptions {
  /** Aborts the call, including any wait between retries. */
  signal?: AbortSignal;
  /**
   * Timeout of each attempt, from sending the request to the end of the response body: an integer
   * from 1 to 2^31-1 ms, or `Infinity` for none (only `signal` ends the call). Anything else rejects
   * the call with a `PayloadValidationError` before it is sent. @default the client's `timeoutMs`
   */
  timeoutMs?: number;
  /** Overrides the client's retry policy for this call (a number sets only `limit`). */
  retry?: RetryPolicy | number;
  /** Extra request headers. */
  headers?: Record<string, string>;
}

/** Options of calls that POST. */
export interface WriteOptions extends RequestOptions {
  /**
   * The POST is safe to repeat (e.g. it carries `opts.matching_fields`), so it is retried like
   * GET/PUT. Without it a POST is retried only on a 429 (Connec! did not process it). @default false
   */
  idempotent?: boolean;
}

export interface KernelOptions {
  service: ApiService;
  headers: Record<string, string>;
  fetch: typeof globalThis.fetch | undefined;
  retry: ResolvedRetryPolicy;
  timeoutMs: number;
  /** @default DEFAULT_MAX_RESPONSE_BYTES */
  maxResponseBytes?: number;
  /**
   * Removes the credentials this client sends from every answer that echoes them (a proxy's
   * page listing the request headers, whatever its status), before any of it can go into a
   * thrown error.
   */
  scrubAnswer?: (text: string) => string;
}

export interface HttpRequest {
  method: HttpMethod;
  url: string;
  body?: unknown;
  options?: WriteOptions | undefined;
  /**
   * Called just before each attempt is handed to `fetch`. A request that throws without having
   * called it was never sent (invalid options, or a signal aborted before the first attempt).
   */
  onDispatch?: () => void;
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  /** The raw body text (parse it with {@link readJson}). */
  text: string;
  url: string;
}

/**
 * The JSON body of a 2xx answer (`undefined` when empty). A body that is not JSON is a
 * `ResponseValidationError`: the request succeeded but the answer is unusable.
 */
export function readJson(response: HttpResponse, method: string): unknown {
  if (response.text === '') return undefined;
  try {
    return JSON.parse(response.text);
  } catch (cause) {
    throw new ResponseValidationError(
      `Connec! ${method} ${redactUrl(response.url)} answered ${response.status} with a body that is not JSON`,
      { issues: [{ path: '', message: 'body is not valid JSON' }], body: response.text.slice(0, 2000), cause },
    );
  }
}

function errorBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text.slice(0, 2000);
  }
}

type Attempt = { kind: 'response'; response: HttpResponse } | { kind: 'failure'; error: MaestranoError; retryable: boolean };

function abortError(service: ApiService, method: string, url: string, cause: unknown): ConnectionError {
  return new ConnectionError(`${serviceNames[service]} ${method} ${redactUrl(url)} was aborted`, {
    service,
    failure: 'aborted',
    method,
    url: redactUrl(url),
    cause,
  });
}

/**
 * The calls in flight on each caller's signal, woken by one 'abort' listener per signal. One
 * listener per call piled up on a signal shared by many concurrent calls (a sync job pushing
 * `importConcurrency` records at once): past ten, Node warned of an EventTarget memory leak
 * that was none. The listener is removed once no call waits on the signal any more.
 */
const abortWatchers = new WeakMap<AbortSignal, { calls: Set<() => void>; listener: () => void }>();

/** Runs `onAbort` when `signal` aborts; the function returned stops watching. */
export function watchAbort(signal: AbortSignal | undefined, onAbort: () => void): () => void {
  if (!signal) return () => undefined;
  let watch = abortWatchers.get(signal);
  if (!watch) {
    const calls = new Set<() => void>();
    const listener = () => {
      abortWatchers.delete(signal);
      for (const call of [...calls]) call();
    };
    watch = { calls, listener };
    abortWatchers.set(signal, watch);
    signal.addEventListener('abort', listener, { once: true });
  }
  const current = watch;
  const call = () => onAbort();
  current.calls.add(call);
  return () => {
    if (!current.calls.delete(call) || current.calls.size > 0) return;
    if (abortWatchers.get(signal) === current) abortWatchers.delete(signal);
    signal.removeEventListener('abort', current.listener);
  };
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    // setTimeout turns anything above 2^31-1 ms into 1 ms: a longer wait is armed in slices,
    // counted down (not measured on Date.now(), which a clock step would stretch or cut).
    let left = Math.max(ms, 0);
    const arm = (): ReturnType<typeof setTimeout> => {
      const slice = Math.min(left, MAX_TIMEOUT_MS);
      left -= slice;
      return setTimeout(() => {
        if (left > 0) {
          timer = arm();
          return;
        }
        unwatch();
        resolve();
      }, slice);
    };
    let timer = arm();
    const unwatch = watchAbort(signal, onAbort);
  });
}

export class HttpKernel {
  readonly #fetch: typeof globalThis.fetch;
  readonly #options: KernelOptions;

  constructor(options: KernelOptions) {
    this.#options = options;
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  /**
   * Send a request with retries. Resolves with any 2xx answer (body fully read); throws an
   * `ApiError` subclass for other statuses and `ConnectionError` when no complete answer arrived.
   */
  async request(request: HttpRequest): Promise<HttpResponse> {
    const { method, url } = request;
    const options = request.options ?? {};
    const policy = resolveRetryPolicy(this.#options.retry, callRetry(options.retry));
    const retryableMethod = method === 'GET' || method === 'PUT' || options.idempotent === true;
    const timeoutMs = options.timeoutMs === undefined ? this.#options.timeoutMs : callTimeout(options.timeoutMs);
    const signal = options.signal;

    for (let attempt = 0; ; attempt += 1) {
      if (signal?.aborted) throw abortError(this.#options.service, method, url, signal.reason);
      const result = await this.#attempt(request, timeoutMs, signal);
      if (result.kind === 'response') {
        const { response } = result;
        if (response.status >= 200 && response.status <= 299) return response;
        const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
        const error = apiErrorFromStatus({
          service: this.#options.service,
          status: response.status,
          method,
          url: response.url,
          body: errorBody(response.text),
          requestId: response.headers.get('x-request-id') ?? undefined,
          retryAfterMs,
        });
        // A 429 is a refusal before any processing: even a POST that is not safe to repeat is
        // retried then (never on a 5xx or a lost connection, whose outcome is unknown).
        const canRetry =
          (retryableMethod || response.status === 429) &&
          attempt < policy.limit &&
          isRetryableStatus(policy, response.status) &&
          (retryAfterMs === undefined || retryAfterMs <= policy.maxRetryAfterMs);
        if (!canRetry) throw error;
        await this.#wait(policy, attempt + 1, retryAfterMs, error, method, url, signal);
        continue;
      }
      if (!(result.retryable && retryableMethod && attempt < policy.limit)) throw result.error;
      await this.#wait(policy, attempt + 1, undefined, result.error, method, url, signal);
    }
  }

  async #wait(
    policy: ResolvedRetryPolicy,
    retry: number,
    retryAfterMs: number | undefined,
    error: MaestranoError,
    method: string,
    url: string,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const delayMs = retryAfterMs ?? backoffDelay(policy, retry);
    policy.onRetry?.({ attempt: retry, delayMs, method, url: redactUrl(url), error });
    try {
      await sleep(delayMs, signal);
    } catch (cause) {
      throw abortError(this.#options.service, method, url, cause);
    }
  }

  async #attempt(request: HttpRequest, timeoutMs: number, signal: AbortSignal | undefined): Promise<Attempt> {
    const { method, url } = request;
    // One controller per attempt, aborted by the timeout or by the caller's signal. Linked by
    // hand: AbortSignal.any() costs a measurable fraction of a millisecond per request.
    const controller = new AbortController();
    let timedOut = false;
    // Infinity (no timeout) arms no timer: setTimeout would turn it into 1 ms.
    const timer =
      timeoutMs === Number.POSITIVE_INFINITY
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            controller.abort(new Error(`timed out after ${timeoutMs} ms`));
          }, timeoutMs);
    const unwatch = watchAbort(signal, () => controller.abort(signal?.reason));
    const combined = controller.signal;
    try {
      const extra = request.options?.headers;
      const init: RequestInit = {
        method,
        signal: combined,
        // A redirect is not followed: fetch would re-send the body (307/308) to whatever host the
        // Location names, and hand that host's answer over as Connec!'s.
        redirect: 'manual',
        headers: extra ? { ...this.#options.headers, ...lowerCaseKeys(extra) } : this.#options.headers,
        ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
      };
      request.onDispatch?.();
      const response = await this.#fetch(url, init);
      const raw = await readBody(response, this.#options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES, `${serviceNames[this.#options.service]} ${method}`, url);
      // Scrubbed whatever the status: a 2xx answer that is not what Connec! sends (a captive
      // portal or proxy page echoing the request headers, an envelope of another shape) also
      // ends up as the `body` of a thrown error (non-JSON, envelope or batch-result errors).
      const text = this.#options.scrubAnswer?.(raw) ?? raw;
      return { kind: 'response', response: { status: response.status, headers: response.headers, text, url: response.url || url } };
    } catch (cause) {
      if (isMaestranoError(cause)) return { kind: 'failure', error: cause, retryable: false };
      if (signal?.aborted) return { kind: 'failure', error: abortError(this.#options.service, method, url, cause), retryable: false };
      const failure: ConnectionFailure = timedOut ? 'timeout' : 'network';
      const what = timedOut ? `timed out after ${timeoutMs} ms` : `failed: ${describeCause(cause)}`;
      return {
        kind: 'failure',
        retryable: true,
        error: new ConnectionError(`${serviceNames[this.#options.service]} ${method} ${redactUrl(url)} ${what}`, {
          service: this.#options.service,
          failure,
          method,
          url: redactUrl(url),
          cause,
        }),
      };
    } finally {
      clearTimeout(timer);
      unwatch();
    }
  }
}

/** The body as text, refused (and the download cancelled) once it exceeds `limit` bytes. */
async function readBody(response: Response, limit: number, what: string, url: string): Promise<string> {
  const tooLarge = () =>
    new ResponseValidationError(`${what} ${redactUrl(url)} answered ${response.status} with a body over ${limit} bytes`, {
      issues: [{ path: '', message: `body larger than ${limit} bytes` }],
    });
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > limit) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const parts: string[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    parts.push(decoder.decode(value, { stream: true }));
  }
  parts.push(decoder.decode());
  return parts.join('');
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) out[key.toLowerCase()] = value;
  return out;
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const inner = cause.cause instanceof Error ? cause.cause : undefined;
    const code = inner && 'code' in inner && typeof inner.code === 'string' ? inner.code : undefined;
    return code ? `${cause.message} (${code})` : cause.message;
  }
  return String(cause);
}
