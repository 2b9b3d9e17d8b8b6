import * as z from 'zod';
import type { Runtime, Tenant } from '../core/types.js';
import { PayloadValidationError, SsoError } from '../errors/index.js';
import { maskUser } from '../webhooks/account.js';
import { MAX_TIMER_MS } from '../internal/sleep.js';
import { readLimitedAnswer } from '../http/body.js';

/** The most of a session check answer (`{valid, recheck}`) read into memory. */
const MAX_CHECK_ANSWER_BYTES = 1024 * 1024;
import { parseUtcTimestamp } from '../internal/time.js';
import { initUrl } from './request.js';
import type { SsoSession } from './types.js';

const StoredSession = z.object({
  tenant: z.string().min(1),
  uid: z.string().min(1),
  groupUid: z.string().min(1),
  session: z.string(),
  recheck: z.string(),
});

const CheckAnswer = z.object({ valid: z.boolean(), recheck: z.string().optional().nullable() });

export type SessionCheckResult =
  | {
      valid: true;
      /** The session to store back (its `recheck` moved forward after a remote check). */
      session: SsoSession;
      /** True when the IdP was asked (the recheck time had passed). */
      checked: boolean;
    }
  | {
      valid: false;
      /**
       * `ended`: the IdP says the session is over; `access_removed`: the account webhooks removed
       * the user from the session's group, or deleted the group (the user's Maestrano session
       * itself can still be live); `malformed`: not a stored SSO session; `unknown_tenant`.
       */
      reason: 'ended' | 'access_removed' | 'malformed' | 'unknown_tenant';
      /** Where to send the user to log in again (null when the tenant is unknown). */
      initUrl: string | null;
    };

/** `{idp}/app_logout?user_uid={uid}` (PROTOCOL §3.6): where to send the user after ending the app session. */
export function logoutUrl(tenant: Tenant, uid: string): string {
  const url = new URL(`${tenant.sso.idp}/app_logout`);
  url.searchParams.set('user_uid', uid);
  return url.toString();
}

/** The largest clock difference the IdP's `Date` header may correct: the largest `sso.clockSkewMs` accepted (1 hour). */
const MAX_CLOCK_CORRECTION_MS = 3_600_000;

/** The IdP's answer to one remote check: valid, and the next re-check time on our clock (ms). */
export type RemoteSessionAnswer = { valid: true; next: number } | { valid: false; removed?: boolean };

/**
 * Remote checks in flight, by tenant, uid and token: concurrent requests of one session past
 * its re-check time (tabs, parallel XHR) wait for one IdP call instead of sending one each.
 */
export type InflightSessionChecks = Map<string, Promise<RemoteSessionAnswer>>;

/**
 * When each IdP (by tenant and IdP URL) last failed a session check (the SDK's clock, ms).
 * For `SESSION_CHECK_PAUSE_MS` after a failure, due checks of that IdP fail at once instead of
 * calling it: during an outage every request of every user would otherwise send one.
 */
export type SessionCheckFailures = Map<string, number>;

/** When each shared check started (the SDK's clock, ms). */
const startedAt = new WeakMap<Promise<RemoteSessionAnswer>, number>();

/** How long a session check in flight is shared with later callers (the default `timeoutMs`). */
const SHARED_CHECK_JOIN_MS = 10_000;

/** How long a failed session check of an IdP answers its due checks without calling it. */
export const SESSION_CHECK_PAUSE_MS = 10_000;

/**
 * The session re-check of PROTOCOL §3.6: valid without a network call until `recheck`;
 * after it, one `GET {idp}{api.base}auth/saml/{uid}?session={token}` (shared by concurrent
 * callers through `inflight`), after the SDK's records (`access_removed` once the account
 * webhooks removed the user from the group or deleted it). An IdP that cannot be reached or
 * answers garbage is an `SsoError` (`session_check_failed`, status 502), and so is every due
 * check of that IdP for `SESSION_CHECK_PAUSE_MS` after (through `failures`, no call): the app
 * decides whether to fail open or closed. The URL (it carries the token) is never logged.
 */
export async function checkSession(
  runtime: Runtime,
  stored: unknown,
  options: { signal?: AbortSignal; timeoutMs?: number; inflight?: InflightSessionChecks; failures?: SessionCheckFailures } = {},
): Promise<SessionCheckResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  // A timer fires a delay above 2^31-1 ms (or NaN) after 1 ms, and `AbortSignal.timeout`
  // throws a RangeError on Infinity: every re-check would fail at once. Infinity is no timeout.
  if (!(timeoutMs === Number.POSITIVE_INFINITY || (Number.isInteger(timeoutMs) && timeoutMs >= 1 && timeoutMs <= MAX_TIMER_MS))) {
    const message = `must be an integer number of ms from 1 to ${MAX_TIMER_MS}, or Infinity for no timeout`;
    throw new PayloadValidationError(`Invalid checkSession options: timeoutMs ${message}`, { issues: [{ path: 'timeoutMs', message }] });
  }
  const parsed = StoredSession.safeParse(stored);
  if (!parsed.success) return { valid: false, reason: 'malformed', initUrl: null };
  const session = parsed.data;
  const tenant = runtime.tenants.get(session.tenant);
  if (!tenant) return { valid: false, reason: 'unknown_tenant', initUrl: null };
  if (!tenant.sso.sloEnabled) return { valid: true, session, checked: false };
  const recheckMs = Date.parse(session.recheck);
  const now = runtime.clock().getTime();
  if (session.session && !Number.isNaN(recheckMs) && now < recheckMs) return { valid: true, session, checked: false };

  // A caller that has already given up (its request closed) starts no IdP call nobody awaits,
  // whose failure would pause the due checks of every other user of that IdP.
  if (options.signal?.aborted) throw failed(options.signal.reason);
  const key = JSON.stringify([tenant.name, tenant.sso.idp, session.uid, session.session]);
  let pending = options.inflight?.get(key);
  // A check running for `SHARED_CHECK_JOIN_MS` is joined no more: started with a long timeout
  // (or none) against an IdP that hangs, it would time every later check of the session out,
  // never asking the IdP again. This caller's check replaces it (its callers keep waiting).
  // One that started that long "after" now (the clock was set back) is replaced too: it would
  // otherwise be joined for as long as the clock moved.
  const started = pending && startedAt.get(pending);
  if (pending && started !== undefined && Math.abs(now - started) >= SHARED_CHECK_JOIN_MS) pending = undefined;
  if (!pending) {
    const idpKey = JSON.stringify([tenant.name, tenant.sso.idp]);
    const failures = options.failures;
    const failedAt = failures?.get(idpKey);
    if (failedAt !== undefined && now >= failedAt && now - failedAt < SESSION_CHECK_PAUSE_MS) {
      throw failed(new Error('the IdP failed a session check a moment ago; not asked again yet'));
    }
    // Shared: only its starter's timeout stops it, never one caller's signal.
    pending = dueCheck(runtime, tenant, session, timeoutMs);
    startedAt.set(pending, now);
    if (failures) {
      const check = pending;
      // A check a later one replaced speaks for the IdP no more: failing at last (a connection
      // held for minutes, then reset), it would pause every user's due checks of an IdP that
      // answered the newer one. Runs before `forget` below: the entry is still its own.
      const current = () => options.inflight === undefined || options.inflight.get(key) === check;
      check.then(
        () => failures.delete(idpKey),
        (error: unknown) => {
          if (error instanceof SsoError && error.reason === 'session_check_failed' && current()) failures.set(idpKey, runtime.clock().getTime());
        },
      );
    }
    if (options.inflight) {
      const inflight = options.inflight;
      inflight.set(key, pending);
      const forget = () => {
        if (inflight.get(key) === pending) inflight.delete(key);
      };
      pending.then(forget, forget);
    }
  }
  // Each caller waits no longer than its own `timeoutMs` (and its signal), also when it joined
  // a check another request started with a longer one.
  // Listened to one by one, not joined with `AbortSignal.any`: on Node 20 every joined signal
  // stays listed on the app's (often app-wide, long-lived) signal, one more per re-check.
  const signals = [options.signal, timeoutMs === Number.POSITIVE_INFINITY ? undefined : AbortSignal.timeout(timeoutMs)].filter((s) => s !== undefined);
  const answer = signals.length === 0 ? await pending : await abortable(pending, signals);
  if (!answer.valid && answer.removed) return { valid: false, reason: 'access_removed', initUrl: initUrl(tenant) };
  if (!answer.valid) return { valid: false, reason: 'ended', initUrl: initUrl(tenant, { groupId: session.groupUid }) };
  return { valid: true, session: { ...session, recheck: new Date(answer.next).toISOString() }, checked: true };
}

function abortable<T>(promise: Promise<T>, signals: AbortSignal[]): Promise<T> {
  const early = signals.find((signal) => signal.aborted);
  if (early) return Promise.reject(failed(early.reason));
  return new Promise<T>((resolve, reject) => {
    const listeners = signals.map((signal) => {
      const onAbort = () => {
        stop();
        reject(failed(signal.reason));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      return () => signal.removeEventListener('abort', onAbort);
    });
    const stop = () => {
      for (const remove of listeners) remove();
    };
    promise.then(
      (value) => {
        stop();
        resolve(value);
      },
      (error: unknown) => {
        stop();
        reject(error);
      },
    );
  });
}

function failed(cause: unknown): SsoError {
  return new SsoError('session_check_failed', 'The session could not be checked', {
    status: 502,
    cause: cause instanceof Error ? new Error(`${cause.name}: ${cause.message}`) : cause,
  });
}

/**
 * A due re-check: the SDK's own records first, then the IdP. Maestrano's IdP session is the
 * user's, not the group's: it stays valid when the account webhooks remove the user from the
 * session's group or delete the group, so only these records end such a session.
 */
async function dueCheck(runtime: Runtime, tenant: Tenant, session: z.infer<typeof StoredSession>, timeoutMs: number): Promise<RemoteSessionAnswer> {
  const key = maskUser(session.uid, session.groupUid, tenant.sso.creationMode);
  let removed: boolean;
  try {
    const [group, memberships] = await Promise.all([
      runtime.storage.groups.get(tenant.name, session.groupUid),
      runtime.storage.users.listMemberships(tenant.name, { uid: key, groupId: session.groupUid }),
    ]);
    removed = group?.status === 'cancelled' || memberships.some((m) => m.status === 'removed');
  } catch (cause) {
    throw new SsoError('storage_unavailable', 'The session could not be checked', { status: 503, cause });
  }
  if (removed) return { valid: false, removed: true };
  return remoteCheck(runtime, tenant, session, timeoutMs);
}

async function remoteCheck(runtime: Runtime, tenant: Tenant, session: z.infer<typeof StoredSession>, timeoutMs: number): Promise<RemoteSessionAnswer> {
  const url = new URL(`${tenant.sso.idp}${tenant.api.base}auth/saml/${encodeURIComponent(session.uid)}`);
  url.searchParams.set('session', session.session);
  let answer: unknown;
  let idpNow = Number.NaN;
  try {
    const response = await runtime.fetch(url, { headers: { accept: 'application/json' }, ...(timeoutMs === Number.POSITIVE_INFINITY ? {} : { signal: AbortSignal.timeout(timeoutMs) }) });
    if (!response.ok) {
      await response.body?.cancel().catch(() => {});
      throw new Error(`IdP answered HTTP ${response.status}`);
    }
    idpNow = Date.parse(response.headers.get('date') ?? '');
    answer = JSON.parse(await readLimitedAnswer(response, MAX_CHECK_ANSWER_BYTES));
  } catch (cause) {
    throw failed(cause);
  }
  const result = CheckAnswer.safeParse(answer);
  if (!result.success) {
    throw new SsoError('session_check_failed', 'The session could not be checked', {
      status: 502,
      cause: new Error('unexpected session check answer'),
    });
  }
  const next = result.data.recheck ? parseUtcTimestamp(result.data.recheck) : Number.NaN;
  if (!result.data.valid || Number.isNaN(next)) return { valid: false };
  // `recheck` is a time on the IdP's clock ("now + 3 minutes" there). With the answer's `Date`
  // it becomes that delay on ours: a server clock ahead of the IdP's would otherwise find
  // every re-check already due and call the IdP on each request.
  // A `Date` further off than any clock skew the SDK accepts (a proxy's broken clock) is ignored:
  // it would otherwise move the re-check years ahead (or make every request call the IdP).
  const received = runtime.clock().getTime();
  const trusted = !Number.isNaN(idpNow) && Math.abs(received - idpNow) <= MAX_CLOCK_CORRECTION_MS;
  const corrected = trusted ? received + (next - idpNow) : next;
  // A `recheck` at the edge of the Date range, moved by the correction, is no date at all
  // (`toISOString` would throw a RangeError at the caller): an answer the SDK cannot use.
  if (Number.isNaN(new Date(corrected).getTime())) {
    throw new SsoError('session_check_failed', 'The session could not be checked', {
      status: 502,
      cause: new Error('the session check answer holds a recheck time out of range'),
    });
  }
  return { valid: true, next: corrected };
}
