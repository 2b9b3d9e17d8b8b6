/**
 * `mno.health()`: what a readiness probe (Kubernetes, a load balancer, a deploy script) asks
 * before it sends traffic or work to a process: can this process read and write its storage,
 * with every table or collection the SDK uses in place?
 *
 * It goes through the storage contract only, so every adapter (a third-party one too) is probed
 * the same way: one lookup of a key that never exists in each repository the SDK reads (groups,
 * users and their memberships, SAML replay records, id maps, cursors, the billing ledger, jobs;
 * each statement names its table and columns, so an adapter whose schema is not migrated, or
 * only partly, fails here with the adapter's own hint instead of at a customer's first login),
 * one job completion that matches no job (every claim and completion also writes the jobs'
 * ordering-key guards, a table of their own on PostgreSQL: without it every worker fails while
 * the web process answers), and one lock taken and released (a write: a database that fails
 * over to a read-only replica answers reads and refuses writes). Nothing is left behind; the lock key is the process's own.
 *
 * Never throws for a storage failure: the report says which operation failed and why, its text
 * scrubbed of credentials as the logger scrubs it, so that it can be served from an endpoint.
 */
import { scrubErrorText } from './config/logger.js';
import type { Runtime } from './core/types.js';
import { StorageError } from './errors/index.js';
import { errorMessage } from './internal/text.js';

/** Options of `mno.health()`. */
export interface HealthOptions {
  /**
   * How long the storage probe may take before it is reported failed (`timeout`). Default
   * 5000 ms, at most 60000. The probe's statements are not cancelled: the adapter's own
   * operation timeout ends them.
   */
  timeoutMs?: number;
  /**
   * Also count the durable jobs by status (`queue` in the report): a backlog or dead letters
   * piling up. One `jobs.counts()`, which reads the whole jobs table on the SQL adapters: keep it
   * off a probe that runs every few seconds against a large queue.
   */
  queue?: boolean;
  /** Stops waiting for the probe (the report then says `aborted`). */
  signal?: AbortSignal;
}

/** One failed check: which storage operation failed, and how (scrubbed text). */
export interface HealthFailure {
  /** `storage_error`, `storage_conflict`, `timeout`, `aborted` or `error` (anything else thrown). */
  code: string;
  /** The storage operation that failed (`groups.get`, `locks.acquire`, …), when known. */
  operation?: string;
  message: string;
}

/** What `mno.health()` answers. JSON-serialisable as it is (instants are ISO 8601 text). */
export interface HealthReport {
  /** True when storage answered every probe: serve `200`, else `503`. */
  ok: boolean;
  /** When the probe started (ISO 8601). */
  checkedAt: string;
  storage: {
    ok: boolean;
    /** The adapter's id: `memory`, `prisma`, `mongo`, or a third-party id. */
    adapter: string;
    /** How long the probe took, in milliseconds. */
    latencyMs: number;
    /** Set when `ok` is false. */
    failure?: HealthFailure;
  };
  /** How many marketplaces the process serves now (information: a registry may start empty). */
  tenants: number;
  /** Jobs by status, with `queue: true` and when storage answered. */
  queue?: { pending: number; running: number; done: number; dead: number };
}

const DEFAULT_TIMEOUT_MS = 5_000;
const MAX_TIMEOUT_MS = 60_000;
/** A tenant and group no marketplace can have (a NUL-free, storable text no SDK path writes). */
const PROBE_TENANT = '~maestrano-health';
const PROBE_GROUP = '~probe';
const PROBE_LOCK_TTL_MS = 30_000;
/** A job id no adapter hands out soon (the SQL adapter's ids count up from 1; others refuse it unread). */
const PROBE_JOB_ID = '999999999999999999';

class ProbeTimeout extends Error {}
class ProbeAborted extends Error {}

function failureOf(error: unknown, operation: string | null): HealthFailure {
  if (error instanceof ProbeTimeout) return { code: 'timeout', ...(operation ? { operation } : {}), message: error.message };
  if (error instanceof ProbeAborted) return { code: 'aborted', message: error.message };
  if (error instanceof StorageError) return { code: error.code, operation: error.operation, message: scrubErrorText(error.message) };
  return { code: 'error', ...(operation ? { operation } : {}), message: scrubErrorText(errorMessage(error)) };
}

/** Builds `mno.health` from the runtime (its storage, tenants, clock and instance id). */
export function createHealthCheck(runtime: Pick<Runtime, 'storage' | 'tenants' | 'clock' | 'instanceId'>) {
  const { storage } = runtime;

  /** The probe's steps, in order; `current` names the one running (for a timeout's report). */
  const probe = async (state: { current: string | null }, queue: boolean): Promise<HealthReport['queue']> => {
    const step = async (operation: string, run: () => Promise<unknown>) => {
      state.current = operation;
      await run();
    };
    const scope = { tenant: PROBE_TENANT, groupId: PROBE_GROUP, entity: '~probe' };
    await step('groups.get', () => storage.groups.get(PROBE_TENANT, PROBE_GROUP));
    await step('users.get', () => storage.users.get(PROBE_TENANT, '~probe'));
    // Memberships: a removal's seat count reads them.
    await step('users.seats', () => storage.users.seats(PROBE_TENANT, PROBE_GROUP));
    await step('idMaps.find', () => storage.idMaps.find(scope, { connecId: '~probe' }));
    await step('cursors.get', () => storage.cursors.get({ ...scope, kind: '~probe' }));
    await step('ledger.get', () => storage.ledger.get(`${PROBE_TENANT}:~probe`));
    await step('jobs.listDead', () => storage.jobs.listDead({ tenant: PROBE_TENANT, limit: 1 }));
    const key = `maestrano-health:${runtime.instanceId}`;
    const owner = `${runtime.instanceId}:health`;
    await step('locks.acquire', () => storage.locks.acquire(key, owner, PROBE_LOCK_TTL_MS));
    await step('locks.release', () => storage.locks.release(key, owner));
    // After the lock, which reports a read-only database: the write every claimed job ends with,
    // and with it the jobs' ordering-key guards (released in the same statement on PostgreSQL).
    // No job has that id, and none is leased to this owner: nothing changes.
    await step('jobs.complete', () => storage.jobs.complete(PROBE_JOB_ID, owner));
    // SAML replay records (every login writes one): a delete that matches nothing.
    await step('replay.forget', () => storage.replay.forget(PROBE_TENANT, '~probe', new Date(0)));
    let counts: HealthReport['queue'];
    if (queue) {
      state.current = 'jobs.counts';
      counts = await storage.jobs.counts();
    }
    state.current = null;
    return counts;
  };

  return async function health(options: HealthOptions = {}): Promise<HealthReport> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
      throw new RangeError(`health: timeoutMs must be a number of milliseconds from 1 to ${MAX_TIMEOUT_MS} (got ${String(timeoutMs)})`);
    }
    const checkedAt = runtime.clock();
    const started = performance.now();
    const state: { current: string | null } = { current: null };
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    const limits = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ProbeTimeout(`storage did not answer within ${timeoutMs} ms`)), timeoutMs);
      timer.unref?.();
      onAbort = () => reject(new ProbeAborted('the health check was aborted'));
      if (options.signal?.aborted) onAbort();
      else options.signal?.addEventListener('abort', onAbort, { once: true });
    });
    const run = probe(state, options.queue === true);
    // A probe that fails after the timeout won must not surface as an unhandled rejection.
    run.catch(() => {});
    let failure: HealthFailure | undefined;
    let queue: HealthReport['queue'];
    try {
      queue = await Promise.race([run, limits]);
    } catch (error) {
      failure = failureOf(error, state.current);
    } finally {
      clearTimeout(timer);
      if (onAbort) options.signal?.removeEventListener('abort', onAbort);
    }
    const latencyMs = Math.round((performance.now() - started) * 10) / 10;
    const report: HealthReport = {
      ok: failure === undefined,
      checkedAt: checkedAt.toISOString(),
      storage: { ok: failure === undefined, adapter: storage.id, latencyMs, ...(failure ? { failure } : {}) },
      tenants: runtime.tenants.list().length,
      ...(queue ? { queue } : {}),
    };
    return report;
  };
}
