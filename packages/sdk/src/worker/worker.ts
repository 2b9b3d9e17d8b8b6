import { randomUUID } from 'node:crypto';
import { JobDeferral, type JobHandler, JobInterruptedError, JobTypes, PermanentJobError, type Runtime } from '../core/types.js';
import { ConfigError, isMaestranoError } from '../errors/index.js';
import { scrubErrorText } from '../config/logger.js';
import type { JobRecord } from '../storage/adapter.js';
import { callObserver } from '../internal/observer.js';
import { MAX_RETRY_AFTER_MS, requestedRetryAfterMs } from '../internal/retry-after.js';
import { type DeadLetter, type DeadLetterFilter, discardDeadLetter, listDeadLetters, retryDeadLetter } from './dead-letters.js';
import { keyPart } from '../internal/keys.js';
import { MAX_TIMER_MS, withDeadline } from '../internal/sleep.js';
import { errorMessage } from '../internal/text.js';

/** Exponential backoff for failed attempts: `baseMs * 2^(attempt-1)`, capped, with ±20 % jitter. */
export interface BackoffPolicy {
  /** Delay after the first failed attempt. Default 1 000 ms. */
  baseMs?: number;
  /** Upper bound of any delay. Default 300 000 ms (5 min); a delay never exceeds 24 h. */
  maxMs?: number;
}

export interface WorkerRunOptions {
  /** Stops claiming when aborted; in-flight jobs get `shutdownGraceMs` to finish. */
  signal?: AbortSignal;
  /**
   * Handler calls running at the same time in this worker. Default 4. A batch (jobs of one
   * type with a batch handler, such as Connec! records, claimed together) is one call.
   */
  concurrency?: number;
  /**
   * Most jobs of one batch-capable type handed to one batch call. Default 100. A batch costs
   * a fixed number of storage round trips and one Connec! call, so larger batches cost less
   * per record; when a claim finds such jobs, the worker claims more of that type up to this.
   */
  batchSize?: number;
  /**
   * Lease per claimed job; renewed every third of it while the handler runs. Default 30 000 ms.
   * A job whose renewals fail until half of it has passed since the last confirmed one is
   * given up before another worker can claim it: `lease_lost`, its `ctx.signal` aborts.
   */
  leaseMs?: number;
  /** Sleep between claims when no job is due. Default 250 ms. */
  pollIntervalMs?: number;
  /** Only these job types (default: every type with a handler). */
  types?: string[];
  /** Id recorded as lease owner. Default: `<runtime.instanceId>:<random>`. */
  workerId?: string;
  /** Resolve as soon as no job is due and none is running (tests, CLIs, cron-style runs). */
  stopWhenIdle?: boolean;
  /**
   * How long in-flight jobs may keep running after `signal` aborts; then their `ctx.signal`
   * aborts. Default 10 000 ms. A handler still running this long after its `ctx.signal`
   * aborted (shutdown, lease lost, `jobTimeoutMs`) is left behind: its leases are no longer
   * renewed, so its jobs are redelivered once they expire, and `run()` does not wait for it.
   */
  shutdownGraceMs?: number;
  /**
   * A handler call still running after this long has its `ctx.signal` aborted ("job timed
   * out"), and the attempt counts as failed. A whole number of ms from 1 to 2,147,483,647
   * (about 24.8 days; `run()` rejects with a `ConfigError` otherwise). Default: none. Imports
   * of large groups can run for a long time and renew their leases meanwhile: set it above the
   * longest you expect.
   */
  jobTimeoutMs?: number;
  /**
   * Delay before a failed job's next attempt. An error that carries `retryAfterMs` (itself or
   * one of its causes: a Connec! or Account API 429/503 whose `Retry-After` was longer than
   * the client waits by itself) is not retried before that wait, whatever the backoff says.
   */
  backoff?: BackoffPolicy;
  /** Called for every job outcome (observability). Must not throw. */
  onEvent?: (event: WorkerEvent) => void;
  /**
   * How long `done` jobs are kept: `run()` deletes those completed longer ago than this
   * (`storage.jobs.purgeCompleted`), when it starts and then at most once an hour, in the
   * background. Default 7 days; `null` keeps them for good (then purge them yourself).
   * `drain()` never purges. A done job's dedupe key is free once it is deleted: the SDK's own
   * keys need it only while the work may be redelivered (a replayed notification older than
   * this is still recognised by its id map).
   */
  completedJobRetentionMs?: number | null;
}

export type WorkerEvent =
  | { type: 'claimed'; job: JobRecord }
  | { type: 'completed'; job: JobRecord; durationMs: number }
  | { type: 'deferred'; job: JobRecord; waitKey: string | null; reason: string }
  | { type: 'failed'; job: JobRecord; error: { message: string; code?: string | undefined }; outcome: 'retrying' | 'dead' | 'lost' }
  | { type: 'lease_lost'; job: JobRecord }
  /**
   * A job given back to the queue without counting the attempt: interrupted by this worker's
   * shutdown, or a job redelivered after a crash set aside while another such job runs alone.
   */
  | { type: 'released'; job: JobRecord }
  | { type: 'storage_unavailable'; error: unknown };

export interface WorkerStats {
  claimed: number;
  completed: number;
  /** Failed attempts that will be retried. */
  retried: number;
  deferred: number;
  deadLettered: number;
  /** Jobs whose lease was lost (another worker will redeliver them). */
  lost: number;
  /** Jobs given back without counting the attempt (interrupted by the shutdown, or set aside: see `released`). */
  released: number;
}

export interface Worker {
  /** Job types this worker can run. */
  readonly types: readonly string[];
  /**
   * Claims and runs jobs until `signal` aborts (or, with `stopWhenIdle`, until nothing is
   * due). Safe to run in any number of processes against one database: jobs are leased.
   */
  run(options?: WorkerRunOptions): Promise<WorkerStats>;
  /** `run({ ...options, stopWhenIdle: true })`. */
  drain(options?: Omit<WorkerRunOptions, 'stopWhenIdle'>): Promise<WorkerStats>;
  /**
   * Jobs of every type this worker runs that failed every attempt (company set-up, billing
   * subscriptions, imports, notifications, polls, purges), newest first; `type` narrows to one,
   * `tenant` and `groupId` to one marketplace or group. `limit` (default 100) must be a positive
   * integer, and `type`, `tenant` and `groupId` strings, in a filter object (else `ConfigError`);
   * a `type` this worker does not run (a misspelt one) is refused with `ConfigError` naming the
   * types it runs, rather than listing nothing. `mno.sync.deadLetters()` lists the sync jobs only.
   */
  deadLetters(filter?: DeadLetterFilter & { type?: string }): Promise<DeadLetter[]>;
  /**
   * Puts a dead letter back in the queue (after fixing its cause); false when there is none
   * with that id. Covers a dead job of any type (billing, company set-up, sync); `mno.sync`'s
   * `retryDeadLetter` only the sync ones.
   */
  retryDeadLetter(jobId: string): Promise<boolean>;
  /**
   * Deletes a dead letter a person dismissed (it will never succeed: a record that will never
   * map, the set-up of a test company you will not serve): it leaves every listing, and its dedupe key is
   * free again. False, and nothing changes, when there is no dead job with that id (also when it
   * was retried or is running meanwhile). Covers a dead job of any type, as `retryDeadLetter`.
   * Rejects with a `BillingError`, changing nothing, for a dead `billing.subscribe` job one of
   * whose attempts may have created a recurring bill nothing recorded (its POST's outcome
   * unknown): only its retry reconciles that bill (adopts it, or cancels it when
   * `onCompanyCreated` now returns no plan for the company or the group has ended). `force: true`
   * discards it anyway (logged as a warning): only once you have checked the group's recurring
   * bills on the platform, e.g. when its marketplace is gone and no retry can ever run. The same
   * for a dead `billing.check_duplicates` job while the ledger still records the bill it checks:
   * nothing else cancels the twin a late POST may have left; retry it once the Account API answers.
   */
  discardDeadLetter(jobId: string, options?: { force?: boolean }): Promise<boolean>;
}


/** What a batch's race answers when its handler outlived its aborted signal by the grace period. */
const ABANDONED = Symbol('abandoned');

const DEFAULTS = {
  concurrency: 4,
  batchSize: 100,
  leaseMs: 30_000,
  pollIntervalMs: 250,
  shutdownGraceMs: 10_000,
  backoffBaseMs: 1_000,
  backoffMaxMs: 300_000,
  completedJobRetentionMs: 7 * 24 * 3_600_000,
} as const;

/**
 * Job types a worker claims ahead of a backlog: setting up a new company (fan-out, billing,
 * its first import) and following up a cancelled or duplicated subscription. Few and rare, but
 * a customer waits for them; the queue is otherwise claimed oldest first across every tenant
 * and group, so one group's bulk edit (thousands of record jobs) held them back until it was
 * drained. See `claimDue`.
 */
const ACCOUNT_JOB_TYPES: ReadonlySet<string> = new Set([
  JobTypes.companyCreated,
  JobTypes.billingSubscribe,
  JobTypes.billingCheckDuplicates,
  JobTypes.syncImport,
  JobTypes.syncPurge,
]);

/**
 * Least time between two looks for account jobs ahead of a backlog (`claimDue`): that claim
 * reads past the backlog (20-40 ms of PostgreSQL CPU with 20,000 due jobs, half of it JIT),
 * so not at every poll (250 ms by default). Every 2 s it still cost two workers about 8% of
 * their throughput in `bench/notifications`. Account jobs wait at most this long behind any
 * backlog, against minutes for the backlog itself.
 */
const ACCOUNT_CLAIM_INTERVAL_MS = 10_000;

/**
 * Longest wait, while a crash suspect runs alone, before claiming again after a claim that
 * brought only suspects: the head of the queue is suspects (claimed to be given back again),
 * but work enqueued meanwhile must not wait for the isolated job, however long it runs.
 */
const SUSPECTS_NAP_MS = 1_000;

/** Least time between two purges of completed jobs by one `run()`. */
const PURGE_INTERVAL_MS = 3_600_000;

/**
 * Delay before the next attempt after `attempts` failed ones. Never above 24 h, whatever
 * `maxMs` says: a `maxMs` of "no cap" gave a job with many attempts a retry date past year
 * 9999, which no storage records (the failure was then never recorded, and the job was
 * redelivered at every lease expiry instead of backing off or being dead-lettered).
 */
export function backoffDelay(attempts: number, policy: BackoffPolicy = {}, random: () => number = Math.random): number {
  const base = policy.baseMs ?? DEFAULTS.backoffBaseMs;
  const max = Math.min(policy.maxMs ?? DEFAULTS.backoffMaxMs, MAX_RETRY_AFTER_MS);
  const exp = Math.min(max, base * 2 ** Math.max(0, attempts - 1));
  const jitter = 1 + (random() * 0.4 - 0.2);
  return Math.max(0, Math.min(max, Math.round(exp * jitter)));
}

/** Recorded instead of an attempt's error when the storage refused to record that error. */
const UNRECORDABLE_ERROR = {
  message: 'The attempt failed, but its error could not be recorded (the storage refused it); see the worker log',
  code: 'unrecordable_error',
} as const;

/**
 * A storable summary of anything a handler threw or rejected with. Total: values `String()`
 * cannot convert (null-prototype objects, a throwing `toString` or getter) never make it throw.
 */
function errorSummary(error: unknown): { message: string; code?: string | undefined } {
  const summary = rawErrorSummary(error);
  // Stored as the job's lastError and handed to observers: without the credentials it quotes.
  return { ...summary, message: scrubErrorText(summary.message) };
}

function rawErrorSummary(error: unknown): { message: string; code?: string | undefined } {
  try {
    if (isMaestranoError(error) && typeof error.message === 'string') {
      return typeof error.code === 'string' ? { message: error.message, code: error.code } : { message: error.message };
    }
    if (error instanceof Error) {
      if (typeof error.message === 'string' && error.message !== '') return { message: error.message };
      return { message: typeof error.name === 'string' && error.name !== '' ? error.name : 'Error' };
    }
    if (typeof error === 'object' && error !== null) {
      const message = (error as { message?: unknown }).message;
      if (typeof message === 'string') return { message };
    }
    return { message: String(error) };
  } catch {
    return { message: 'non-Error thrown' };
  }
}

/**
 * What a handler's rejection becomes as a job's failure. Returned from a `then` callback, a
 * promise-like value would be adopted: a handler that threw a promise resolving to nothing
 * would pass as done, one that never settles would hold its job and slot for good. Such a
 * value (and `null`/`undefined`) becomes an Error.
 */
function failureOf(job: JobRecord, error: unknown): unknown {
  if (error === null || error === undefined) return new Error(`job ${job.id} failed`);
  let thenable = false;
  try {
    thenable = (typeof error === 'object' || typeof error === 'function') && typeof (error as { then?: unknown }).then === 'function';
  } catch {
    // A throwing `then` getter: not adopted by us, but not an error to keep as it is either.
    thenable = true;
  }
  if (!thenable) return error;
  const { message } = errorSummary(error);
  const described = message !== '[object Promise]' && message !== '[object Object]' ? `: ${message}` : '';
  return new Error(`job ${job.id} failed: its handler rejected with a promise-like value, not an error${described}`);
}

/** Resolves after `ms`, or at once when `signal` aborts (its timer is cleared then). */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}

/**
 * A job redelivered after attempts that all ended without an outcome: no failure was ever
 * recorded for it (`lastError` null), yet it was claimed before. Its process crashed (or its
 * lease was lost) while it ran, maybe because of it. A job past its attempts is not one: it
 * is dead-lettered without running. A job whose earlier attempt recorded a failure is not
 * told apart from one retried after that failure, and is batched as usual.
 */
function crashSuspect(job: JobRecord): boolean {
  // From the second crash on: one crash (a deploy's SIGKILL) redelivers its batch as usual.
  return job.attempts > 2 && job.attempts <= job.maxAttempts && job.lastError === null;
}

/** The keys of `WorkerRunOptions` (anything else is reported by `run()` as ignored). */
const RUN_OPTION_KEY_LIST = [
  'signal',
  'concurrency',
  'batchSize',
  'leaseMs',
  'pollIntervalMs',
  'types',
  'workerId',
  'stopWhenIdle',
  'shutdownGraceMs',
  'jobTimeoutMs',
  'backoff',
  'onEvent',
  'completedJobRetentionMs',
] as const satisfies readonly (keyof WorkerRunOptions)[];
// Every option listed: a new option left out would be reported as unknown (a compile error here).
const everyRunOptionListed: Exclude<keyof WorkerRunOptions, (typeof RUN_OPTION_KEY_LIST)[number]> extends never ? true : never = true;
void everyRunOptionListed;
const RUN_OPTION_KEYS: readonly string[] = RUN_OPTION_KEY_LIST;

/**
 * Refuses numeric options that would make `run()` spin or stall silently: `Number('four')` as
 * `concurrency` (NaN) gave a worker that never ran a job. Timers beyond 2^31-1 ms fire after
 * 1 ms in Node, so every job would time out (or poll) at once.
 */
function checkRunOptions(options: WorkerRunOptions): void {
  const issues: { path: string; message: string }[] = [];
  const got = (value: unknown) => (typeof value === 'number' ? String(value) : typeof value);
  /** A number (`concurrency` 0 still means 1, `leaseMs` under 1 s means 1 s, as documented). */
  const number = (name: keyof WorkerRunOptions, min: number, max: number) => {
    const value = options[name];
    if (value === undefined) return;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      issues.push({ path: name, message: `must be a number from ${min} to ${max} (got ${got(value)})` });
    }
  };
  number('concurrency', 0, Number.MAX_SAFE_INTEGER);
  // A fraction would reach `jobs.claim` as its limit, which storage refuses on every loop.
  if (typeof options.concurrency === 'number' && Number.isFinite(options.concurrency) && !Number.isInteger(options.concurrency)) {
    issues.push({ path: 'concurrency', message: `must be a whole number (got ${options.concurrency})` });
  }
  number('batchSize', 0, Number.MAX_SAFE_INTEGER);
  number('leaseMs', 0, MAX_TIMER_MS);
  number('pollIntervalMs', 0, MAX_TIMER_MS);
  number('shutdownGraceMs', 0, MAX_TIMER_MS);
  const timeout = options.jobTimeoutMs;
  if (timeout !== undefined && !(Number.isInteger(timeout) && timeout >= 1 && timeout <= MAX_TIMER_MS)) {
    issues.push({ path: 'jobTimeoutMs', message: `must be a whole number of ms from 1 to ${MAX_TIMER_MS} (about 24.8 days)` });
  }
  // A NaN delay (`Number(process.env.X)`) became a retry date storage refuses: the failure could
  // not be recorded, and the job was claimed again at once, forever. Delays are capped at 24 h.
  const backoff: unknown = options.backoff;
  if (backoff !== undefined) {
    if (typeof backoff !== 'object' || backoff === null) issues.push({ path: 'backoff', message: `must be an object { baseMs?, maxMs } (got ${got(backoff)})` });
    else {
      for (const key of ['baseMs', 'maxMs'] as const) {
        const value = (backoff as BackoffPolicy)[key];
        if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value >= 0)) {
          issues.push({ path: `backoff.${key}`, message: `must be a number of ms, at least 0 (got ${got(value)})` });
        }
      }
    }
  }
  // A single type as a string (`types: 'sync.import'`) failed on `.filter` with a TypeError.
  const types: unknown = options.types;
  if (types !== undefined && !(Array.isArray(types) && types.every((t) => typeof t === 'string'))) {
    issues.push({ path: 'types', message: `must be a list of job type names (got ${Array.isArray(types) ? 'a list holding a non-string' : got(types)})` });
  }
  const retention = options.completedJobRetentionMs;
  if (retention !== undefined && retention !== null && !(Number.isSafeInteger(retention) && retention >= 0)) {
    issues.push({ path: 'completedJobRetentionMs', message: `must be a whole number of ms, at least 0, or null (got ${got(retention)})` });
  }
  if (issues.length > 0) {
    throw new ConfigError(`Invalid worker options: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`, { issues });
  }
}

/**
 * Builds a worker over the runtime's storage. `handlers` maps job types to handlers (the
 * modules' contributions); `company.created` is handled by the built-in fan-out when not
 * given.
 */
export function createWorker(runtime: Runtime, handlers: Record<string, JobHandler>): Worker {
  const table: Record<string, JobHandler> = { ...handlers };
  if (!table[JobTypes.companyCreated]) {
    const followUps = [JobTypes.billingSubscribe, JobTypes.syncImport].filter((t) => table[t] !== undefined);
    table[JobTypes.companyCreated] = companyCreatedFanout(runtime, followUps);
  }
  const types = Object.keys(table).sort();

  async function run(options: WorkerRunOptions = {}): Promise<WorkerStats> {
    checkRunOptions(options);
    // A misspelt option (`concurency: 8`) would silently run with the default. Said once per run;
    // not refused: the options object may carry methods of the app's own (a method-style
    // `onEvent` reaching them through `this`).
    const unknown = Object.keys(options).filter((key) => !RUN_OPTION_KEYS.includes(key) && typeof (options as Record<string, unknown>)[key] !== 'function');
    if (unknown.length > 0) {
      runtime.logger.warn('worker: unknown run options ignored', { options: unknown.join(', '), expected: RUN_OPTION_KEYS.join(', ') });
    }
    const concurrency = Math.max(1, options.concurrency ?? DEFAULTS.concurrency);
    const leaseMs = Math.max(1_000, options.leaseMs ?? DEFAULTS.leaseMs);
    const pollMs = Math.max(1, options.pollIntervalMs ?? DEFAULTS.pollIntervalMs);
    const grace = options.shutdownGraceMs ?? DEFAULTS.shutdownGraceMs;
    const workerId = options.workerId ?? `${runtime.instanceId}:${randomUUID().slice(0, 8)}`;
    const batchSize = Math.max(1, Math.min(1_000, Math.floor(options.batchSize ?? DEFAULTS.batchSize)));
    const claimTypes = options.types ? options.types.filter((t) => table[t]) : types;
    // A misspelt type (or one of a module this configuration lacks) would never be claimed, silently.
    const unhandled = options.types ? options.types.filter((t) => !table[t]) : [];
    if (unhandled.length > 0) {
      runtime.logger.warn('worker: run option types names job types without a handler; they are never claimed', { types: unhandled.join(', '), handled: types.join(', ') });
    }
    const accountTypes = claimTypes.filter((t) => ACCOUNT_JOB_TYPES.has(t));
    const otherTypes = claimTypes.filter((t) => !ACCOUNT_JOB_TYPES.has(t));
    /** Whether the last claim was full: more jobs are due than slots (a backlog). */
    let backlogged = false;
    /** Slots running account jobs. */
    let accountBusy = 0;
    /** When account jobs were last looked for ahead of the backlog (`performance.now()`). */
    let accountClaimAt = Number.NEGATIVE_INFINITY;
    const signal = options.signal;
    // Observability must never break processing: a throwing or rejecting onEvent is ignored.
    // Called as a method of the options, as before: an `onEvent(e) { this.… }` keeps its `this`.
    const emit = (event: WorkerEvent) => callObserver((e: WorkerEvent) => options.onEvent?.(e), [event]);
    const stats: WorkerStats = { claimed: 0, completed: 0, retried: 0, deferred: 0, deadLettered: 0, lost: 0, released: 0 };
    const inFlight = new Set<Promise<void>>();
    /** Handler calls in flight (a batch is one). */
    let busy = 0;
    const handlerAbort = new AbortController();
    /**
     * The signal controllers of the handler calls in flight, aborted by the shutdown. A set, not
     * one 'abort' listener per call on `handlerAbort.signal`: past ten calls in flight
     * (`concurrency` above 10) Node warned of an EventTarget memory leak that was none.
     */
    const batchAborts = new Set<AbortController>();
    let slotFreed: (() => void) | null = null;
    let storageFailures = 0;
    const heartbeatEveryMs = Math.max(250, Math.floor(leaseMs / 3));
    /**
     * How long a job counts as ours without a confirmed renewal: half its lease, so a job whose
     * heartbeats fail is given up at the second failed timer heartbeat, while a third of the
     * lease still remains, well before another worker can claim it.
     */
    const unconfirmedLeaseMs = Math.floor(leaseMs / 2);
    /** Last resort for a failure nothing else handled: logged, never an unhandled rejection. */
    const logUnexpected = (message: string, error: unknown) => {
      try {
        runtime.logger.error(message, { error: errorSummary(error).message });
      } catch {
        // A throwing logger must not crash the process either.
      }
    };
    /** Resolves when a handler call ends (a slot is free) or `signal` aborts. */
    const slotOrAbort = () => {
      // A waiter left over from a race the poll timer won: settle it, dropping its listener.
      const stale = slotFreed;
      slotFreed = null;
      stale?.();
      return new Promise<void>((resolve) => {
        const onAbort = () => resolve();
        signal?.addEventListener('abort', onAbort, { once: true });
        slotFreed = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
      });
    };

    /** Waits for the poll interval, or less when a handler call ends (a slot is free) or `signal` aborts. */
    const slotOrNap = async (napMs = pollMs): Promise<void> => {
      if (inFlight.size === 0) return sleep(napMs, signal);
      // Wait for either a slot or the poll interval, whichever comes first; the loser's
      // timer and abort listener are dropped (left behind, one per freed slot piled up).
      const nap = new AbortController();
      const stop = () => nap.abort();
      signal?.addEventListener('abort', stop, { once: true });
      // Aborted during the claim: no 'abort' event comes any more.
      if (signal?.aborted) nap.abort();
      await Promise.race([sleep(napMs, nap.signal), slotOrAbort()]);
      signal?.removeEventListener('abort', stop);
      nap.abort();
    };
    /** Whether a job run on its own (see `crashSuspect`) is in flight in this worker. */
    let isolatedRunning = false;

    type BatchRun = NonNullable<JobHandler['batch']>;
    /** A plain handler (or none) run as a batch of its one job. */
    const oneByOne =
      (type: string, handler: JobHandler | undefined): BatchRun =>
      (jobs, ctx) =>
        Promise.all(
          jobs.map((job) =>
            handler
              ? handler(job, ctx).then(
                  () => null,
                  (error: unknown) => failureOf(job, error),
                )
              : new Error(`no handler for job type "${type}"`),
          ),
        );

    /**
     * Runs claimed jobs of one type: one handler call for all of them (a plain handler gets
     * batches of one), leases kept alive meanwhile, one `completeMany` for the done ones;
     * deferrals and failures are settled one by one. A job whose lease was lost is left to
     * the worker that redelivers it.
     */
    const processBatch = async (jobs: JobRecord[], run: BatchRun, claimedAt: number): Promise<void> => {
      const started = Date.now();
      const batchAbort = new AbortController();
      batchAborts.add(batchAbort);
      // A handler that outlives its aborted signal by `grace` is left behind (see `shutdownGraceMs`).
      let abandonTimer: ReturnType<typeof setTimeout> | null = null;
      const abandoned = new Promise<typeof ABANDONED>((resolve) => {
        batchAbort.signal.addEventListener(
          'abort',
          () => {
            abandonTimer = setTimeout(() => resolve(ABANDONED), grace);
          },
          { once: true },
        );
      });
      const timeLimit =
        options.jobTimeoutMs === undefined ? null : setTimeout(() => batchAbort.abort(new JobInterruptedError('timeout', `job timed out after ${options.jobTimeoutMs} ms`)), options.jobTimeoutMs);
      const lost = new Set<string>();
      /**
       * The jobs whose leases this batch keeps: all claimed ones, then only those handed to the
       * handler (a job dead-lettered without running is no longer ours to renew or to lose).
       */
      let held = jobs;
      /** When each job's lease was last confirmed (taken before the claim or renewal was sent). */
      const renewedAt = new Map(jobs.map((job) => [job.id, claimedAt]));
      /** Set once the handler has returned: a renewal answered later changes nothing. */
      let finished = false;
      const heartbeat = async (): Promise<boolean> => {
        if (finished) return held.every((job) => !lost.has(job.id));
        const alive = held.filter((job) => !lost.has(job.id));
        const sentAt = runtime.clock().getTime();
        let renewed: Set<string>;
        try {
          // One round trip for the whole batch, not one per job.
          renewed = new Set(
            await runtime.storage.jobs.heartbeatMany(
              alive.map((job) => job.id),
              workerId,
              leaseMs,
            ),
          );
          for (const id of renewed) renewedAt.set(id, sentAt);
        } catch (error) {
          // Unknown: still ours while enough of the last confirmed lease remains for the next
          // heartbeat to renew it. Past that, another worker may claim the job before we can
          // confirm it, so it is treated as lost (the handler is told to stop) rather than
          // risk running it twice.
          const now = runtime.clock().getTime();
          renewed = new Set(alive.filter((job) => now - (renewedAt.get(job.id) ?? claimedAt) < unconfirmedLeaseMs).map((job) => job.id));
          runtime.logger.warn('worker: heartbeat failed', {
            jobs: alive.length,
            givenUp: alive.length - renewed.size,
            error: errorSummary(error).message,
          });
        }
        if (finished) return held.every((job) => !lost.has(job.id));
        for (const job of alive) {
          if (!renewed.has(job.id)) {
            lost.add(job.id);
            emit({ type: 'lease_lost', job });
          }
        }
        if (held.every((job) => lost.has(job.id))) batchAbort.abort(new JobInterruptedError('lease_lost', 'lease lost'));
        return held.every((job) => !lost.has(job.id));
      };
      /**
       * A job whose last confirmed renewal is older than `unconfirmedLeaseMs` is given up even
       * while a renewal is still waiting for an answer: a database that stops answering
       * (a partition) keeps that call pending past the lease, and another worker may then
       * claim the job while this handler still runs.
       */
      const expireUnconfirmed = () => {
        if (finished) return;
        const now = runtime.clock().getTime();
        for (const job of held) {
          if (lost.has(job.id) || now - (renewedAt.get(job.id) ?? claimedAt) < unconfirmedLeaseMs) continue;
          lost.add(job.id);
          emit({ type: 'lease_lost', job });
        }
        if (held.every((job) => lost.has(job.id))) batchAbort.abort(new JobInterruptedError('lease_lost', 'lease lost'));
      };
      let renewing = false;
      const timer = setInterval(() => {
        expireUnconfirmed();
        // One renewal at a time: a stalled one is not joined by a pile of others.
        if (renewing || finished) return;
        renewing = true;
        heartbeat()
          .catch((error: unknown) => logUnexpected('worker: heartbeat failed unexpectedly', error))
          .finally(() => {
            renewing = false;
          });
      }, heartbeatEveryMs);
      try {
        // Poison jobs (redelivered past their attempts) are dead-lettered, not run.
        const runnable: JobRecord[] = [];
        for (const job of jobs) {
          if (job.attempts > job.maxAttempts) {
            const outcome = await settle(job, new Error(`attempt ${job.attempts} of ${job.maxAttempts}: earlier attempts never finished (worker crash or lease lost)`));
            // Only once the job is really dead (not lost to another worker, not left to its lease).
            const hook = table[job.type]?.poisoned;
            if (outcome === 'dead' && hook) {
              // Called inside a promise: a hook that throws (or returns no promise) must not stop
              // the rest of the batch, whose jobs would stay leased, unrun, until their leases expire.
              await Promise.resolve()
                .then(() => hook(job))
                .catch((error: unknown) => logUnexpected(`worker: the poisoned hook of "${job.type}" failed`, error));
            }
          } else runnable.push(job);
        }
        held = runnable;
        if (runnable.length === 0) return;
        let results: unknown[];
        try {
          const answer = await Promise.race([run(runnable, { signal: batchAbort.signal, heartbeat, logger: runtime.logger }), abandoned]);
          if (answer === ABANDONED) {
            // No renewal from here on: the leases expire and another run redelivers the jobs.
            clearInterval(timer);
            finished = true;
            for (const job of runnable) {
              stats.lost++;
              if (lost.has(job.id)) continue;
              lost.add(job.id);
              emit({ type: 'lease_lost', job });
            }
            runtime.logger.error('worker: a handler kept running after its signal aborted; its jobs are left to their leases', {
              type: runnable[0]?.type,
              jobs: runnable.length,
              jobIds: runnable.slice(0, 10).map((job) => job.id),
              reason: errorSummary(batchAbort.signal.reason).message,
              graceMs: grace,
            });
            return;
          }
          results = answer;
          if (!Array.isArray(results) || results.length !== runnable.length) {
            throw new Error(`the batch handler of "${runnable[0]?.type}" returned ${Array.isArray(results) ? results.length : typeof results} results for ${runnable.length} jobs`);
          }
        } catch (error) {
          // `throw undefined` / `Promise.reject()` must not read as "done" (null/undefined).
          const failure = error ?? new Error('batch handler rejected without an error');
          results = runnable.map(() => failure);
        }
        clearInterval(timer);
        finished = true;
        const done = runnable.filter((job, k) => (results[k] === null || results[k] === undefined) && !lost.has(job.id));
        if (done.length > 0) {
          let completed: Set<string>;
          try {
            completed = new Set(await runtime.storage.jobs.completeMany(done.map((job) => job.id), workerId));
          } catch (error) {
            // Not recorded: the leases expire and the jobs are redelivered (handlers are idempotent).
            runtime.logger.warn('worker: could not record completed jobs; they will be redelivered', { jobs: done.length, error: errorSummary(error).message });
            completed = new Set();
          }
          for (const job of done) {
            if (completed.has(job.id)) {
              stats.completed++;
              emit({ type: 'completed', job, durationMs: Date.now() - started });
            } else {
              // Not ours any more (taken over), or not recorded: redelivered. Counted as lost,
              // so reported as lost too (observers pair each `claimed` with an outcome).
              stats.lost++;
              emit({ type: 'lease_lost', job });
            }
          }
        }
        for (const [k, job] of runnable.entries()) {
          const result = results[k];
          if (result === null || result === undefined) continue;
          if (lost.has(job.id)) {
            stats.lost++;
            continue;
          }
          await settle(job, result);
        }
        // Done but no longer ours: another worker redelivers them.
        for (const [k, job] of runnable.entries()) if (lost.has(job.id) && (results[k] ?? null) === null) stats.lost++;
      } finally {
        clearInterval(timer);
        if (timeLimit) clearTimeout(timeLimit);
        if (abandonTimer) clearTimeout(abandonTimer);
        finished = true;
        batchAborts.delete(batchAbort);
      }
    };

    /** Records a failed or deferred attempt (backoff, wait key, dead letter) and counts it. */
    const settle = async (job: JobRecord, error: unknown): Promise<'released' | 'retrying' | 'dead' | 'lost'> => {
    if (handlerAbort.signal.aborted && !(error instanceof JobDeferral) && (await releaseSafely(job))) {
      // Stopped by this worker's shutdown, not failed: back in the queue, due now, the attempt
      // not counted (otherwise every deploy would move a long job closer to its dead letter).
      stats.released++;
      runtime.logger.info('worker: job interrupted by the shutdown, given back', { jobId: job.id, type: job.type });
      emit({ type: 'released', job });
      return 'released';
    }
    const now = runtime.clock().getTime();
    if (error instanceof JobDeferral) {
      const delay = Math.min(error.retryInMs ?? backoffDelay(job.attempts, options.backoff), MAX_RETRY_AFTER_MS);
      const outcome = await failSafely(job, {
        error: { message: scrubErrorText(error.reason), code: 'deferred' },
        retryAt: new Date(now + delay),
        waitKey: error.waitKey,
      });
      if (outcome === 'dead') {
        // A deferral on the last attempt dead-letters the job: reported like any dead letter
        // (a `deferred` event would tell observers it runs again).
        stats.deadLettered++;
        const summary = { message: scrubErrorText(error.reason), code: 'deferred' };
        runtime.logger.error('worker: job attempt failed', { jobId: job.id, type: job.type, attempt: job.attempts, outcome, error: summary.message, code: summary.code });
        emit({ type: 'failed', job, error: summary, outcome });
        return outcome;
      }
      if (outcome === 'lost') {
        // Not deferred: another worker holds the job now. Reported as counted (a `deferred`
        // event would tell observers it waits, with `stats.lost` saying otherwise).
        stats.lost++;
        emit({ type: 'lease_lost', job });
        return outcome;
      }
      stats.deferred++;
      emit({ type: 'deferred', job, waitKey: error.waitKey, reason: error.reason });
      // What it waits for may have happened while it ran (the wake then found nothing waiting):
      // looked at once more now that the deferral is recorded, and woken when it is over.
      if (error.waitKey !== null && error.stillWaiting) {
        const waitKey = error.waitKey;
        try {
          // Bounded: an app's check that never settles must not hold the slot (nor a shutdown).
          const still = withDeadline(error.stillWaiting(), STILL_WAITING_TIMEOUT_MS, () => new Error(`no answer within ${STILL_WAITING_TIMEOUT_MS} ms`));
          if (!(await still)) await runtime.storage.jobs.wake(waitKey);
        } catch (cause) {
          runtime.logger.warn('worker: could not check a deferred job\'s wait again; it runs at its retry time', { jobId: job.id, type: job.type, error: errorMessage(cause) });
        }
      }
      return outcome;
    }
    const permanent = error instanceof PermanentJobError;
    const summary = permanent ? { message: scrubErrorText(error.message), ...(error.code === undefined ? {} : { code: error.code }) } : errorSummary(error);
    // A server that said how long to wait (Retry-After) is not called again sooner.
    const delay = Math.max(backoffDelay(job.attempts, options.backoff), requestedRetryAfterMs(error) ?? 0);
    const outcome = await failSafely(job, {
      error: summary,
      retryAt: new Date(now + delay),
      ...(permanent ? { final: true } : {}),
    });
    if (outcome === 'dead') stats.deadLettered++;
    else if (outcome === 'lost') stats.lost++;
    else stats.retried++;
    runtime.logger[outcome === 'dead' ? 'error' : 'warn']('worker: job attempt failed', {
      jobId: job.id,
      type: job.type,
      attempt: job.attempts,
      outcome,
      error: summary.message,
      code: summary.code,
      ...(permanent ? { permanent: true } : {}),
    });
    emit({ type: 'failed', job, error: summary, outcome });
    return outcome;
    };

    /** Gives a job back after a shutdown interruption; false (then it is settled as a failure) when that fails. */
    const releaseSafely = async (job: JobRecord): Promise<boolean> => {
      try {
        return await runtime.storage.jobs.release(job.id, workerId);
      } catch (error) {
        runtime.logger.warn('worker: could not give back an interrupted job', { jobId: job.id, error: errorSummary(error).message });
        return false;
      }
    };

    /**
     * Records a failed attempt. When the storage refuses the failure (e.g. its error text),
     * it is recorded once more with a generic error, so the job still backs off (and its
     * ordering key is freed) instead of staying running until its lease expires. A failure
     * to record even that leaves the lease to expire: the job is redelivered, never lost.
     */
    const failSafely = async (
      job: JobRecord,
      failure: Parameters<Runtime['storage']['jobs']['fail']>[2],
    ): Promise<'retrying' | 'dead' | 'lost'> => {
      try {
        return await runtime.storage.jobs.fail(job.id, workerId, failure);
      } catch (error) {
        runtime.logger.warn('worker: could not record a failed attempt; recording it with a generic error', {
          jobId: job.id,
          error: errorSummary(error).message,
        });
      }
      try {
        return await runtime.storage.jobs.fail(job.id, workerId, { ...failure, error: UNRECORDABLE_ERROR });
      } catch (error) {
        runtime.logger.warn('worker: could not record a failed attempt; the lease will expire', {
          jobId: job.id,
          error: errorSummary(error).message,
        });
        return 'retrying';
      }
    };

    const retention = options.completedJobRetentionMs === undefined ? DEFAULTS.completedJobRetentionMs : options.completedJobRetentionMs;
    let purgedAt = Number.NEGATIVE_INFINITY;
    let purging: Promise<void> | null = null;
    /** Stops a purge between two statements once `run()` no longer waits for it. */
    const purgeStop = new AbortController();
    /** Deletes jobs done longer ago than `retention`, at most hourly, never blocking the claims. */
    const purgeCompleted = (): void => {
      if (retention === null || options.stopWhenIdle || purging) return;
      const now = runtime.clock().getTime();
      // Either way: a clock stepped back must not stop the purges for the length of the step.
      if (Math.abs(now - purgedAt) < PURGE_INTERVAL_MS) return;
      purgedAt = now;
      // No job was completed before 1970: a longer retention (`Number.MAX_SAFE_INTEGER` for
      // "keep them all") deletes nothing, and its cut-off may be no date storage accepts.
      if (now - retention <= 0) return;
      const before = new Date(now - retention);
      purging = Promise.resolve()
        .then(() => runtime.storage.jobs.purgeCompleted(before, { signal: purgeStop.signal }))
        .then(
          (removed) => {
            if (removed > 0) runtime.logger.info('worker: completed jobs purged', { removed, before: before.toISOString() });
          },
          (error: unknown) => {
            runtime.logger.warn('worker: could not purge completed jobs; tried again in an hour', { error: errorSummary(error).message });
          },
        )
        // A throwing logger must not end the process with an unhandled rejection either.
        .catch(() => {})
        .finally(() => {
          purging = null;
        });
    };

    /**
     * Claims up to `free` due jobs. Behind a backlog, account jobs (`ACCOUNT_JOB_TYPES`) are
     * claimed first, so a new customer's billing and import do not wait for every older record
     * job to run; but they never take the last slot (when there are several), so a wave of long
     * imports cannot starve the record jobs either. Without a backlog, one claim in due order,
     * as before (an idle worker polls with one query). Storage finds account jobs behind the
     * backlog by reading past it (no index leads with the type), so they are looked for at most
     * once per `ACCOUNT_CLAIM_INTERVAL_MS` (or the poll interval, if longer), not once per freed slot.
     */
    const claimDue = async (free: number): Promise<JobRecord[]> => {
      const claim = (limit: number, types: string[]) => runtime.storage.jobs.claim({ worker: workerId, limit, leaseMs, types });
      if (!backlogged || accountTypes.length === 0 || otherTypes.length === 0) return claim(free, claimTypes);
      const accountRoom = concurrency > 1 ? Math.max(0, concurrency - 1 - accountBusy) : free;
      const at = performance.now();
      const lookForAccountJobs = accountRoom > 0 && at - accountClaimAt >= Math.max(pollMs, ACCOUNT_CLAIM_INTERVAL_MS);
      let jobs: JobRecord[] = [];
      if (lookForAccountJobs) {
        accountClaimAt = at;
        jobs = await claim(Math.min(free, accountRoom), accountTypes);
      }
      try {
        if (jobs.length < free) jobs.push(...(await claim(free - jobs.length, otherTypes)));
        // Nothing else to run, and nothing running: account jobs may be due (found none, a
        // `drain()` would end with them still pending). Not after every short claim: the backlog's
        // head may be held back by its ordering keys (one record edited again and again), and
        // this claim reads past the whole backlog. A short claim ends the backlog anyway: the
        // next one, in due order, takes account jobs too.
        if (jobs.length === 0 && inFlight.size === 0 && !lookForAccountJobs && accountRoom > 0) jobs.push(...(await claim(Math.min(free, accountRoom), accountTypes)));
      } catch (error) {
        // The jobs already claimed run (left leased but unrun, they would wait for their
        // leases to expire); the next claim tries again.
        if (jobs.length === 0) throw error;
        runtime.logger.warn('worker: claiming jobs failed; running those already claimed', { error: errorSummary(error).message });
      }
      return jobs;
    };

    while (!signal?.aborted) {
      purgeCompleted();
      const free = concurrency - busy;
      if (free <= 0) {
        // Every slot is busy: wait for one, but not past an abort (the grace period starts then).
        await slotOrAbort();
        continue;
      }
      let jobs: JobRecord[];
      // Taken before the claim is sent: the lease cannot have started earlier.
      const claimedAt = runtime.clock().getTime();
      // An empty answer means idle only if nothing ran while the claim read the queue: a job
      // that ended meanwhile may have enqueued a follow-up after that read (company.created's
      // fan-out), and `drain()` would return with it due. Such a claim is sent again.
      const ranDuringClaim = inFlight.size > 0;
      try {
        jobs = await claimDue(free);
        backlogged = jobs.length === free;
        storageFailures = 0;
      } catch (error) {
        storageFailures++;
        emit({ type: 'storage_unavailable', error });
        runtime.logger.warn('worker: claiming jobs failed; retrying', { error: errorSummary(error).message });
        await sleep(Math.min(10_000, pollMs * 2 ** Math.min(storageFailures, 6)), signal);
        continue;
      }
      if (jobs.length === 0) {
        if (options.stopWhenIdle && inFlight.size === 0) {
          if (!ranDuringClaim) break;
          // Something ran during the claim and nothing runs now: claim again at once.
          continue;
        }
        await slotOrNap();
        continue;
      }
      // The claim was full, so more may be due: fill each batch-capable type's batch up to
      // `batchSize` with one claim of that type (a batch is one slot, whatever its size). Not
      // when it brought crash suspects: after a crash the head of the queue is mostly suspects,
      // which would only be claimed to be given back again (a whole batch per suspect run).
      if (jobs.length === free && !jobs.some(crashSuspect)) {
        const batchTypes = [...new Set(jobs.map((job) => job.type))].filter((t) => table[t]?.batch);
        for (const type of batchTypes) {
          const have = jobs.filter((job) => job.type === type).length;
          if (have >= batchSize) continue;
          try {
            jobs.push(...(await runtime.storage.jobs.claim({ worker: workerId, limit: batchSize - have, leaseMs, types: [type] })));
          } catch (error) {
            // The jobs already claimed run; the next claim tries again.
            runtime.logger.warn('worker: claiming more jobs for a batch failed', { type, error: errorSummary(error).message });
          }
        }
      }
      if (signal?.aborted) {
        // Shut down while the claim was out: its jobs go back to the queue, due now and their
        // attempt not counted, rather than starting under a grace period meant for jobs
        // already running (one that outlasts it would be interrupted, or its lease lost).
        // Counted and reported as claimed first, so each `released` follows its `claimed`, as
        // for a job interrupted while running (observers counting jobs in flight stay right).
        for (const job of jobs) {
          stats.claimed++;
          emit({ type: 'claimed', job });
          if (!(await releaseSafely(job))) continue; // its lease expires: redelivered, never lost
          stats.released++;
          emit({ type: 'released', job });
        }
        break;
      }
      const byType = new Map<string, JobRecord[]>();
      for (const job of jobs) {
        stats.claimed++;
        emit({ type: 'claimed', job });
        const group = byType.get(job.type);
        if (group) group.push(job);
        else byType.set(job.type, [job]);
      }
      const track = (work: Promise<void>, type: string) => {
        const account = ACCOUNT_JOB_TYPES.has(type);
        busy++;
        if (account) accountBusy++;
        // processBatch records its own failures; anything escaping it (a throwing logger or
        // clock) is logged here, never left as an unhandled rejection that crashes the process.
        const p: Promise<void> = work
          .catch((error: unknown) => logUnexpected('worker: processing jobs failed unexpectedly; their leases will expire', error))
          .finally(() => {
            busy--;
            if (account) accountBusy--;
            inFlight.delete(p);
            const wake = slotFreed;
            slotFreed = null;
            wake?.();
          });
        inFlight.add(p);
      };
      let started = 0;
      let isolatedStarted = 0;
      let suspectsGivenBack = 0;
      for (const [type, all] of byType) {
        const handler = table[type];
        let group = all;
        if (handler?.batch) {
          // A job whose earlier attempts all ended without an outcome (the process crashed, or
          // its lease was lost) may be what crashed it: run in a batch again, it would take the
          // batch down with it until every member is dead-lettered. Such jobs run on their own,
          // one at a time in this worker; the others are given back uncounted, claimed again
          // later, so only the culprit accumulates crashes.
          const isolated = group.filter(crashSuspect);
          if (isolated.length > 0) {
            group = group.filter((job) => !crashSuspect(job));
            const kept = isolatedRunning ? null : isolated[0];
            // Given back before anything starts (a crash then counts no attempt of theirs), all at
            // once: one round trip each in turn, the jobs claimed with them would wait that long
            // to start renewing leases that count from the claim, and be given up as lost.
            const setAside = isolated.filter((job) => job !== kept);
            suspectsGivenBack += setAside.length;
            const given = await Promise.all(setAside.map((job) => releaseSafely(job)));
            for (const [k, job] of setAside.entries()) {
              if (!given[k]) continue; // its lease expires: redelivered
              stats.released++;
              emit({ type: 'released', job });
            }
            if (kept) {
              isolatedRunning = true;
              started++;
              isolatedStarted++;
              track(
                processBatch([kept], oneByOne(type, handler), claimedAt).finally(() => {
                  isolatedRunning = false;
                }),
                type,
              );
            }
          }
        }
        if (group.length > 0) started++;
        if (handler?.batch && group.length > 1) {
          for (let i = 0; i < group.length; i += batchSize) track(processBatch(group.slice(i, i + batchSize), handler.batch, claimedAt), type);
        } else for (const job of group) track(processBatch([job], oneByOne(type, handler), claimedAt), type);
      }
      // Every job claimed was given back or runs alone: claimed again at once, the suspects would
      // be given back again and again until the isolated one ends (a worker polling every few ms
      // claimed and gave back every suspect once per poll while one ran). So wait for a slot, or
      // at least a second: never for the isolated job alone, which may run for minutes while
      // work enqueued meanwhile (behind no suspect) waits. A claim that only brought the one
      // now running alone gave nothing back: the next claim is an ordinary poll.
      if (started === 0 || (started === isolatedStarted && suspectsGivenBack > 0)) {
        await slotOrNap(isolatedRunning ? Math.max(pollMs, SUSPECTS_NAP_MS) : pollMs);
      }
    }

    // A purge still running (a long backlog, deleted statement by statement) is waited for
    // within the grace period, which starts now for it as for the jobs: a shutdown must not wait
    // for it any longer. It is then stopped before its next statement (the app may close its
    // database next); what it deleted stays deleted.
    const purgeGraceOver = new AbortController();
    const purgeWaited = purging ? Promise.race([purging, sleep(grace, purgeGraceOver.signal)]) : null;
    if (inFlight.size > 0) {
      // Cancelled once the jobs are done, so its timer does not keep the process alive.
      const graceOver = new AbortController();
      await Promise.race([Promise.allSettled([...inFlight]), sleep(grace, graceOver.signal)]);
      graceOver.abort();
      if (inFlight.size > 0) {
        handlerAbort.abort(new JobInterruptedError('shutdown', 'worker shutting down'));
        for (const batchAbort of [...batchAborts]) batchAbort.abort(handlerAbort.signal.reason);
        await Promise.allSettled([...inFlight]);
      }
    }
    await purgeWaited;
    purgeGraceOver.abort();
    purgeStop.abort();
    return stats;
  }

  return {
    types,
    run,
    drain: (options = {}) => run({ ...options, stopWhenIdle: true }),
    deadLetters: async (filter = {}) => {
      const invalid = (message: string) => new ConfigError(message, { issues: [{ path: 'deadLetters', message }] });
      if (typeof filter !== 'object' || filter === null) throw invalid('deadLetters: the filter must be an object');
      const { type, ...rest } = filter;
      // A misspelt type would list nothing, read as "no dead letters". (Any type's dead letters,
      // one no handler runs any more included: `storage.jobs.listDead`.)
      if (typeof type === 'string' && !types.includes(type)) {
        throw invalid(`deadLetters: "${type}" is not a job type this worker runs (${types.join(', ')})`);
      }
      return listDeadLetters(runtime.storage, type === undefined ? types : [type], rest, invalid);
    },
    // From untyped JavaScript a number is no job id (an adapter's `/^[0-9]+$/` test would read it as one).
    retryDeadLetter: (jobId) => retryDeadLetter(runtime.storage, jobId),
    discardDeadLetter: (jobId, options) =>
      discardDeadLetter(runtime.storage, runtime.logger, jobId, { message: 'worker: dead letter discarded', force: options?.force === true }),
  };
}

/**
 * The built-in `company.created` handler: fans the event out to one durable job per
 * interested module (billing set-up, initial import), each deduplicated per group, so a
 * replayed or redelivered event never starts them twice.
 */
export function companyCreatedFanout(runtime: Runtime, followUps: readonly string[]): JobHandler {
  return async (job) => {
    const payload = job.payload;
    const tenant = job.tenant;
    const groupId = job.groupId;
    if (tenant === null || groupId === null) {
      throw new Error('company.created job without tenant/groupId');
    }
    await runtime.storage.jobs.enqueueMany(
      followUps.map((type) => ({
        type,
        tenant,
        groupId,
        payload,
        dedupeKey: `${type}:${tenant}:${keyPart(groupId)}`,
        orderingKey: `${type}:${tenant}:${keyPart(groupId)}`,
      })),
    );
  };
}

/** How long the worker waits for a `JobDeferral`'s `stillWaiting` check before giving up on it. */
const STILL_WAITING_TIMEOUT_MS = 10_000;
