import { basicAuthHeader } from './http.js';
import type { Delivery, JsonObject } from './types.js';
import { newId } from './util.js';

export interface NotifierOptions {
  /** Delay used to coalesce Connec! changes into one notification (ms). */
  notifyDelayMs: number;
  /** First retry delay; doubles on each attempt (ms). */
  retryBaseMs: number;
  maxAttempts: number;
  timeoutMs: number;
  credentials(marketplace: string): { apiId: string; apiKey: string } | undefined;
}

type DeliveryInput = Pick<Delivery, 'kind' | 'marketplace' | 'method' | 'url' | 'body'>;

/** What `Notifier.call` got back: the app's status and body text, or why there was none. */
export interface CallResult {
  delivery: Delivery;
  /** The app's HTTP status; null when it did not answer (network error, timeout, stop). */
  status: number | null;
  /** The app's response body as text ('' without an answer). */
  text: string;
  /** `HTTP <status>` for a non-2xx answer, the network error, or null. */
  error: string | null;
}

/** How much of an app's answer the delivery log keeps. */
const MAX_RESPONSE_CHARS = 65_536;

function describeError(e: unknown): string {
  return e instanceof Error ? (e.cause instanceof Error ? `${e.message}: ${e.cause.message}` : e.message) : String(e);
}

interface PendingBatch {
  url: string;
  records: Map<string, Map<string, JsonObject>>;
  timer: NodeJS.Timeout;
}

/**
 * Sends Connec! notifications and account webhooks to the app with HTTP Basic auth
 * (api id:key of the marketplace), retrying failed deliveries with exponential backoff.
 * Every delivery and attempt is kept in an in-memory log (last 1000).
 */
export class Notifier {
  readonly deliveries: Delivery[] = [];
  readonly #options: NotifierOptions;
  readonly #pending = new Map<string, PendingBatch>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #inFlight = 0;
  #waiters: Array<() => void> = [];
  #stopped = false;
  /** Aborted by stop() and reset(): cancels the attempts in flight. */
  #abort = new AbortController();
  /** Bumped by reset(): attempts started before it neither log nor retry. */
  #generation = 0;

  constructor(options: NotifierOptions) {
    this.#options = options;
  }

  /** Queues a changed record (already rendered) for the marketplace's notification path. */
  queueRecord(marketplace: string, url: string, collection: string, recordId: string, record: JsonObject): void {
    if (this.#stopped) return;
    let batch = this.#pending.get(marketplace);
    if (!batch) {
      const timer = setTimeout(() => this.#flush(marketplace), this.#options.notifyDelayMs);
      batch = { url, records: new Map(), timer };
      this.#pending.set(marketplace, batch);
    }
    let byId = batch.records.get(collection);
    if (!byId) {
      byId = new Map();
      batch.records.set(collection, byId);
    }
    byId.set(recordId, record);
  }

  #flush(marketplace: string): void {
    const batch = this.#pending.get(marketplace);
    if (!batch) return;
    this.#pending.delete(marketplace);
    const body: Record<string, JsonObject[]> = {};
    for (const [collection, byId] of batch.records) body[collection] = [...byId.values()];
    this.send({ kind: 'connec.notification', marketplace, method: 'POST', url: batch.url, body: JSON.stringify(body) });
  }

  /** Sends now any coalesced notifications still waiting for their delay. */
  flushAll(): void {
    for (const [marketplace, batch] of [...this.#pending]) {
      clearTimeout(batch.timer);
      this.#flush(marketplace);
    }
  }

  #log(input: DeliveryInput): Delivery {
    const delivery: Delivery = { id: newId('dlv'), ...input, state: 'pending', attempts: [], nextAttemptAt: new Date().toISOString(), createdAt: new Date().toISOString() };
    this.deliveries.push(delivery);
    if (this.deliveries.length > 1000) this.deliveries.splice(0, this.deliveries.length - 1000);
    return delivery;
  }

  send(input: DeliveryInput): Delivery {
    const delivery = this.#log(input);
    void this.#attempt(delivery);
    return delivery;
  }

  /** One HTTP request of a delivery: Basic `api.id:api.key` of its marketplace, JSON body, redirects not followed. */
  #fetch(delivery: Delivery, signal: AbortSignal): Promise<Response> {
    const creds = this.#options.credentials(delivery.marketplace);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (creds) headers.authorization = basicAuthHeader(creds.apiId, creds.apiKey);
    if (delivery.body !== null) headers['content-type'] = 'application/json';
    // A redirect is the app's answer, not followed: a 3xx means the webhook was not handled (a
    // login page, a route not mounted), and following it would send the credentials elsewhere.
    return fetch(delivery.url, { method: delivery.method, headers, body: delivery.body ?? undefined, signal, redirect: 'manual' });
  }

  #signal(): AbortSignal {
    return AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#options.timeoutMs)]);
  }

  /**
   * Sends one request now and waits for the app's answer, with no coalescing and no retry: a
   * connector control call (PROTOCOL §5.4), which the platform makes on demand and whose
   * answer the caller wants. It is in the delivery log like every delivery, with the app's
   * answer in `response`; a non-2xx answer or a network error marks it `failed`.
   */
  async call(input: DeliveryInput): Promise<CallResult> {
    const delivery = this.#log(input);
    const generation = this.#generation;
    const at = new Date().toISOString();
    let status: number | null = null;
    let text = '';
    let error: string | null = null;
    if (this.#stopped) error = 'The sandbox is stopping';
    else {
      this.#inFlight++;
      try {
        const res = await this.#fetch(delivery, this.#signal());
        status = res.status;
        text = await res.text();
        if (status < 200 || status >= 300) error = `HTTP ${status}`;
      } catch (e) {
        error = describeError(e);
      } finally {
        this.#inFlight--;
      }
    }
    // After a reset() the log no longer holds this delivery; the caller still gets the answer.
    if (generation === this.#generation) {
      delivery.attempts.push({ at, status, error });
      delivery.state = error === null ? 'delivered' : 'failed';
      delivery.nextAttemptAt = null;
      if (status !== null) delivery.response = { status, body: text.slice(0, MAX_RESPONSE_CHARS) };
    }
    this.#checkIdle();
    return { delivery, status, text, error };
  }

  async #attempt(delivery: Delivery): Promise<void> {
    if (this.#stopped) return;
    const generation = this.#generation;
    const signal = this.#signal();
    this.#inFlight++;
    const at = new Date().toISOString();
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await this.#fetch(delivery, signal);
      status = res.status;
      await res.arrayBuffer().catch(() => undefined);
      if (status < 200 || status >= 300) error = `HTTP ${status}`;
    } catch (e) {
      error = describeError(e);
    }
    if (generation !== this.#generation) {
      // reset() dropped this delivery: it is neither logged nor retried.
      this.#inFlight--;
      this.#checkIdle();
      return;
    }
    delivery.attempts.push({ at, status, error });
    if (error === null) {
      delivery.state = 'delivered';
      delivery.nextAttemptAt = null;
    } else if (delivery.attempts.length >= this.#options.maxAttempts || this.#stopped) {
      delivery.state = 'failed';
      delivery.nextAttemptAt = null;
    } else {
      const delay = this.#options.retryBaseMs * 2 ** (delivery.attempts.length - 1);
      delivery.nextAttemptAt = new Date(Date.now() + delay).toISOString();
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        void this.#attempt(delivery);
      }, delay);
      this.#timers.add(timer);
    }
    this.#inFlight--;
    this.#checkIdle();
  }

  get idle(): boolean {
    return this.#pending.size === 0 && this.#inFlight === 0 && this.#timers.size === 0;
  }

  #checkIdle(): void {
    if (!this.idle) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once nothing is queued, in flight or waiting for a retry. */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #cancelAll(): void {
    for (const batch of this.#pending.values()) clearTimeout(batch.timer);
    this.#pending.clear();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#abort.abort();
  }

  /**
   * Forgets every delivery: empties the log, drops the coalesced notifications still waiting,
   * cancels pending retries and aborts the attempts in flight (which are then neither logged
   * nor retried). Later deliveries are sent as usual.
   */
  reset(): void {
    this.#generation++;
    this.#cancelAll();
    this.#abort = new AbortController();
    this.deliveries.length = 0;
    this.#checkIdle();
  }

  /** Stops for good: drops queued notifications and retries, and aborts the attempts in flight. */
  stop(): void {
    this.#stopped = true;
    this.#cancelAll();
    this.#checkIdle();
  }
}
