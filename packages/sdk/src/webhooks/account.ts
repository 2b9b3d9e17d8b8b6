/**
 * Account webhooks (PROTOCOL §5.1-§5.3, checklist 2.2):
 * - `DELETE /maestrano/account/groups/:id/:tenant`: the group stopped using the app.
 * - `DELETE /maestrano/account/groups/:group_id/users/:id/:tenant`: a member was removed.
 *
 * Both verify HTTP Basic `api.id:api.key` of the tenant named by the route in constant time
 * (401 `{"error":"Invalid credentials"}` and nothing changed otherwise) and answer
 * `{"success":true}`. Both are idempotent: a replay, or a call about an unknown group or
 * membership, answers success and changes nothing. The exception: a group deletion that
 * arrives while an SSO first login is still provisioning that group (a live provisioning
 * claim) waits for it (up to `lockWaitMs`) and then cancels the new group; if the login is
 * still running by then it answers 503 with `Retry-After`, so that the platform's retry
 * cancels the group once it exists instead of the deletion being lost.
 *
 * Failure atomicity: every side effect that can fail (Account API calls, the app's hooks)
 * runs BEFORE the SDK's own state is written, and the writes are compare-and-set. A hook
 * that throws therefore answers 500 with the stored state exactly as before, so the
 * platform's retry runs the whole operation again (hooks receive a stable
 * `ctx.idempotencyKey` for that). Concurrent deliveries for one group (or user) are
 * serialised with a storage lock. Seat changes of one group (member removals here, members
 * added by SSO logins) are serialised with the group's seats lock (`./locks.ts`) around
 * membership write + recount + `onSeatsChanged`, so the last report carries the real count.
 *
 * Durable follow-ups of a group deletion (`groupCancelledJobs`, e.g. `sync.purge`): the
 * group's status is the commit point, so they are enqueued right after it (a job never exists
 * for a group that is still active), one per type, deduplicated per group. Every delivery that
 * finds the group already cancelled enqueues them again. When the enqueue fails the webhook
 * answers 500 and Maestrano's retry stores them; a replay finds them stored and adds nothing.
 */
import { randomUUID } from 'node:crypto';
import type { AccountClient } from '../account/client.js';
import {
  cancelCompanyKey,
  dropPendingUser,
  GROUP_DELETED_MARK,
  type Logger,
  noteRepeatedRemoval,
  pendingUserMark,
  type RouteHandler,
  recordedCompanyId,
  removedAt,
  type Tenant,
  UNRECORDED_ROLE,
} from '../core/types.js';
import { ValidationFailedError } from '../errors/index.js';
import { takeOrGiveBack } from '../internal/give-back.js';
import { sleep, withDeadline } from '../internal/sleep.js';
import { monotonicMs } from '../internal/time.js';
import type { GroupRecord, MembershipRecord, StorageAdapter } from '../storage/adapter.js';
import { invalidCredentialsResponse, verifyTenantBasicAuth } from './auth.js';
import { groupLockKey, seatsLockKey, userLockKey, withStorageLock } from './locks.js';
import { keyPart } from '../internal/keys.js';

/** Context of every hook call made by the account webhooks. */
export interface AccountHookContext {
  tenant: Tenant;
  logger: Logger;
  /**
   * Aborted when the platform hangs up the webhook request while the hook runs, and when the
   * webhook stops waiting for the hook (three lock leases, 6 min by default: it answers 500).
   */
  signal: AbortSignal;
  /**
   * Stable for the logical operation (`mno:cancel-company:<tenant>:<groupId>`,
   * `mno:remove-membership:<tenant>:<uid>:<groupId>:<n>`, `mno:block-user:<tenant>:<uid>:<groupId>:<n>`,
   * `mno:seats:<tenant>:<uid>:<groupId>:<n>:removed:<activeSeats>:<state>`, where `<n>` tells
   * one removal of a membership from a later one after the user was added back, and `<state>`
   * the group's membership state the seat count comes from). A
   * hook can be called again with the same key when a later step failed: make it idempotent.
   */
  idempotencyKey: string;
}

export interface AccountCompanyRef {
  /** The app's company id. */
  id: string;
  tenant: string;
  groupId: string;
}

export interface AccountUserRef {
  /** The app's user id. */
  id: string;
  tenant: string;
  /** Identity-mode key (`usr-…`, or `usr-….cld-…` in virtual mode). */
  uid: string;
}

export interface AccountSeatsChange {
  /** Active memberships of the group after the change. */
  activeSeats: number;
  added: string[];
  removed: string[];
}

/** The provisioning hooks these webhooks call (the app's own records). */
export interface AccountWebhookHooks {
  /** The group was deleted on Maestrano: cancel, block or archive the app's company. */
  cancelCompany?(company: AccountCompanyRef, ctx: AccountHookContext): Promise<void> | void;
  /**
   * A member was removed from the group: end the user's access to this company (delete the
   * membership, end the sessions in it). Called on every removal, also when the user is
   * still in other groups, and when the SDK recorded no membership of a known user in a known
   * group (the app may hold one it accepted before a storage failure), or no user at all where
   * a first login had the app create or link one and then failed, or a removed membership a
   * login re-added in the app and failed before writing (see `pendingUserMark`): removing
   * nothing must succeed.
   */
  removeMembership?(user: AccountUserRef, company: AccountCompanyRef, ctx: AccountHookContext): Promise<void> | void;
  /**
   * The user has no active membership in a live group left (their last group removed them):
   * block the user. `company` is the company whose removal left them without any. Called
   * after `removeMembership` of that removal; also for a user already blocked where the SDK
   * recorded no membership (a failed login's `addMembership` may have made it active again).
   */
  blockUser?(user: AccountUserRef, company: AccountCompanyRef, ctx: AccountHookContext): Promise<void> | void;
  /** A company's number of active members changed (per-seat pricing). */
  onSeatsChanged?(company: AccountCompanyRef, change: AccountSeatsChange, ctx: AccountHookContext): Promise<void> | void;
}

export interface AccountWebhookDeps {
  storage: StorageAdapter;
  logger: Logger;
  hooks: AccountWebhookHooks;
  account(tenant: Tenant): AccountClient;
  /** Cancel the group's submitted/active recurring bills on group deletion. */
  cancelRecurringBills: boolean;
  instanceId: string;
  /** Lock lease of one webhook run, in ms. Default 120 000. */
  lockTtlMs?: number;
  /**
   * How long a concurrent delivery waits for the lock, and a group deletion for an SSO login
   * still provisioning that group, before answering 503. Default 10 000 ms.
   */
  lockWaitMs?: number;
  /**
   * Job types enqueued once a group is cancelled (payload `{ tenant, groupId }`, dedupe key
   * `<type>:<tenant>:<groupId>`). `createMaestrano` passes the ones a module handles
   * (`sync.purge` with a connector). Default: none.
   */
  groupCancelledJobs?: readonly string[];
}

/** Runs every step, each whatever the others did; then throws the first error, if any. */
async function independently(steps: readonly (() => Promise<void>)[]): Promise<void> {
  let first: { error: unknown } | null = null;
  for (const run of steps) {
    try {
      await run();
    } catch (error) {
      first ??= { error };
    }
  }
  if (first) throw first.error;
}

/** `unmask_user` (PROTOCOL §3.5): the real uid, the text before the first `.`. */
export function unmaskUser(uid: string): string {
  const dot = uid.indexOf('.');
  return dot < 0 ? uid : uid.slice(0, dot);
}

/** `mask_user` (PROTOCOL §3.5): the identity-mode key of a uid received for a group. */
export function maskUser(uid: string, groupId: string, mode: 'real' | 'virtual'): string {
  const real = unmaskUser(uid);
  return mode === 'virtual' ? `${real}.${groupId}` : real;
}

/** TTL of the claim `groupDeleted` takes for a moment to see whether a group is being provisioned. */
const PROBE_CLAIM_TTL_MS = 5_000;
/** Upper bound of the `Retry-After` answered while a group is being provisioned (a claim can live up to 10 min). */
const MAX_RETRY_AFTER_SECONDS = 60;

/** Seconds until a provisioning claim expires (by then the group exists or the claim is abandoned), 1..60. */
function retryAfterSeconds(claimExpiresAt: Date): number {
  const seconds = Math.ceil((claimExpiresAt.getTime() - Date.now()) / 1000);
  return Math.min(Math.max(seconds, 1), MAX_RETRY_AFTER_SECONDS);
}

const SUCCESS = () => Response.json({ success: true }, { headers: { 'cache-control': 'no-store' } });

function failure(status: number, error: string, message: string, headers: Record<string, string> = {}): Response {
  return Response.json({ success: false, error, message }, { status, headers: { 'cache-control': 'no-store', ...headers } });
}

class StepFailed extends Error {
  constructor(
    readonly step: string,
    readonly original: unknown,
  ) {
    super(step);
  }
}

async function step<T>(name: string, run: () => Promise<T> | T): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw new StepFailed(name, error);
  }
}

export function createAccountWebhooks(deps: AccountWebhookDeps): { groupDeleted: RouteHandler; groupUserDeleted: RouteHandler } {
  const { storage, logger, hooks } = deps;
  const lockTtlMs = deps.lockTtlMs ?? 120_000;
  const lockWaitMs = deps.lockWaitMs ?? 10_000;
  /** How long the webhook waits for one of the app's hooks (see `hookStep`). */
  const hookGiveUpMs = 3 * lockTtlMs;
  const followUps = deps.groupCancelledJobs ?? [];

  /** Runs `body` under the lock; null when the lock could not be taken in time. */
  async function withLock(key: string, body: () => Promise<Response>): Promise<Response | null> {
    const owner = `${deps.instanceId}:webhook:${randomUUID()}`;
    const run = await withStorageLock(storage, key, { owner, ttlMs: lockTtlMs, waitMs: lockWaitMs, logger, renew: true }, body);
    return run.acquired ? run.value : null;
  }

  /**
   * Whether an SSO first login is still provisioning the group. `groups.get` answers null both
   * for a group the app never saw and while a provisioning claim is pending, and the storage
   * contract has no read-only look at claims, so this claims the key itself for a moment:
   * `pending` is another owner's live claim (provisioning in flight); `exists` means it completed
   * meanwhile; `claimed` means no claim, or an expired (abandoned) one that this took over: the
   * probe holds it while `whileUnknown` runs (no login can start provisioning meanwhile), then
   * releases it, leaving nothing stored.
   */
  async function provisioningState(
    tenant: string,
    groupId: string,
    whileUnknown?: () => Promise<void>,
  ): Promise<{ state: 'unknown' } | { state: 'provisioning'; claimExpiresAt: Date } | { state: 'exists'; group: GroupRecord }> {
    const owner = `${deps.instanceId}:webhook-probe:${randomUUID()}`;
    const claim = await takeOrGiveBack(
      () => storage.groups.claim(tenant, groupId, { owner, ttlMs: PROBE_CLAIM_TTL_MS }),
      () => storage.groups.release(tenant, groupId, owner),
    );
    if (claim.state === 'pending') return { state: 'provisioning', claimExpiresAt: claim.claimExpiresAt };
    if (claim.state === 'exists') return { state: 'exists', group: claim.record };
    try {
      await whileUnknown?.();
    } finally {
      await storage.groups.release(tenant, groupId, owner).catch((error: unknown) => {
        logger.warn('maestrano: could not release a probe claim (it expires on its own)', { tenant, groupId, error: String(error) });
      });
    }
    return { state: 'unknown' };
  }

  /** `provisioningState`, waiting up to `lockWaitMs` for an in-flight provisioning to end. */
  async function awaitProvisioning(tenant: string, groupId: string, whileUnknown?: () => Promise<void>): ReturnType<typeof provisioningState> {
    const until = monotonicMs() + lockWaitMs;
    for (let i = 0; ; i++) {
      const state = await provisioningState(tenant, groupId, whileUnknown);
      const left = until - monotonicMs();
      if (state.state !== 'provisioning' || left <= 0) return state;
      await sleep(Math.min(20 * 2 ** Math.min(i, 5), 500, left));
    }
  }

  function failed(error: unknown, fields: Record<string, unknown>): Response {
    const stepName = error instanceof StepFailed ? error.step : 'internal';
    const original = error instanceof StepFailed ? error.original : error;
    logger.error('maestrano: account webhook failed; answering 5xx so that a retry completes it', {
      ...fields,
      step: stepName,
      error: original instanceof Error ? `${original.name}: ${original.message}` : String(original),
    });
    const status = stepName === 'account_api' ? 502 : 500;
    return failure(status, stepName === 'account_api' ? 'upstream_failed' : 'internal_error', 'Not processed; please retry');
  }

  async function cancelRecurringBills(tenant: Tenant, groupId: string): Promise<string[]> {
    const client = deps.account(tenant);
    const bills = await client.recurringBills.list({ groupId });
    const cancelled: string[] = [];
    for (const bill of bills) {
      if (bill.status === 'cancelled' || bill.status === 'expired') continue;
      try {
        await client.recurringBills.cancel(bill.id);
        cancelled.push(bill.id);
      } catch (error) {
        // Raced with another cancellation (or expiry): fine when it is no longer running.
        if (!(error instanceof ValidationFailedError)) throw error;
        const now = await client.recurringBills.retrieve(bill.id);
        if (now.status !== 'cancelled' && now.status !== 'expired') throw error;
      }
    }
    return cancelled;
  }

  /** The recurring-bill pass after the group is marked cancelled (and on every later delivery). */
  async function lastBillPass(tenant: Tenant, groupId: string, fields: Record<string, unknown>): Promise<void> {
    const cancelled = await step('account_api', () => cancelRecurringBills(tenant, groupId));
    if (cancelled.length > 0) logger.info('maestrano: recurring bills cancelled (last pass)', { ...fields, cancelled });
  }

  /** Stores the follow-up jobs of a cancelled group; returns how many were new (0 on a replay). */
  async function enqueueFollowUps(tenant: string, groupId: string): Promise<number> {
    if (followUps.length === 0) return 0;
    const results = await storage.jobs.enqueueMany(
      followUps.map((type) => ({
        type,
        tenant,
        groupId,
        payload: { tenant, groupId },
        dedupeKey: `${type}:${tenant}:${keyPart(groupId)}`,
        orderingKey: `${type}:${tenant}:${keyPart(groupId)}`,
      })),
    );
    return results.filter((r) => r.created).length;
  }

  /** Virtual mode: hooks for every active user of the group first, then their state. Returns the uids blocked. */
  async function blockGroupUsers(tenant: Tenant, request: Request, company: AccountCompanyRef): Promise<string[]> {
    const members = await step('storage', () =>
      storage.users.listMemberships(tenant.name, { groupId: company.groupId, status: 'active' }),
    );
    const targets: { uid: string; user: AccountUserRef | null }[] = [];
    for (const member of members) {
      const user = await step('storage', () => storage.users.get(tenant.name, member.uid));
      targets.push({ uid: member.uid, user: user && user.status === 'active' ? { id: user.userId, tenant: tenant.name, uid: user.uid } : null });
    }
    for (const { uid, user } of targets) {
      if (user && hooks.blockUser) {
        await hookStep('blockUser', tenant, request, `mno:block-user:${tenant.name}:${keyPart(uid)}:${keyPart(company.groupId)}`, (ctx) => hooks.blockUser?.(user, company, ctx));
      }
    }
    // The user before the membership: should storage fail between the two, the retry still
    // lists the membership as active and finishes it (the other order left the user active).
    for (const { uid, user } of targets) {
      if (user) await step('storage', () => storage.users.setStatus(tenant.name, uid, 'blocked'));
      await step('storage', () => storage.users.setMembershipStatus(tenant.name, uid, company.groupId, 'removed'));
    }
    return targets.filter((t) => t.user !== null).map((t) => t.uid);
  }

  const groupDeleted: RouteHandler = async ({ request, tenant, params }) => {
    if (!verifyTenantBasicAuth(request, tenant)) return invalidCredentialsResponse();
    const groupId = params.id ?? params.group_id;
    if (!groupId) return failure(400, 'bad_request', 'Missing group id');
    const fields = { tenant: tenant.name, groupId, webhook: 'groupDeleted' };
    try {
      const answer = await withLock(groupLockKey(tenant.name, groupId), async () => {
        let group = await storage.groups.get(tenant.name, groupId);
        if (!group) {
          // An SSO first login may be provisioning the group right now: wait for it a little.
          // Unknown: the deletion is marked before it is acknowledged, under the probe's claim,
          // so a first login arriving later (an assertion issued before the deletion) is refused.
          const markDeleted = async () => {
            await storage.cursors.advance({ tenant: tenant.name, groupId, ...GROUP_DELETED_MARK }, 1, {}, true);
          };
          const probe = await step('storage', () => awaitProvisioning(tenant.name, groupId, markDeleted));
          if (probe.state === 'provisioning') {
            // Still running: acknowledging would lose the deletion (the login completes the
            // group right after). The platform's retry, once the group exists, cancels it.
            const retryAfter = retryAfterSeconds(probe.claimExpiresAt);
            logger.warn('maestrano: group deletion while an SSO login is still provisioning the group; answering 503 so that the platform retries', {
              ...fields,
              claimExpiresAt: probe.claimExpiresAt.toISOString(),
              retryAfterSeconds: retryAfter,
            });
            return failure(503, 'provisioning_in_progress', 'The group is still being provisioned; please retry', {
              'retry-after': String(retryAfter),
            });
          }
          if (probe.state === 'unknown') {
            // A first login may have created the app's company and died before completing the
            // group: that company is cancelled (no subscription or user can exist yet).
            const companyId = await step('storage', () => recordedCompanyId(storage, tenant.name, groupId));
            if (companyId !== null) {
              if (hooks.cancelCompany) {
                await hookStep('cancelCompany', tenant, request, cancelCompanyKey(tenant.name, groupId), (ctx) => hooks.cancelCompany?.({ id: companyId, tenant: tenant.name, groupId }, ctx));
              }
              logger.info('maestrano: group deletion for a group whose first login never completed; its company is cancelled', { ...fields, companyId });
              return SUCCESS();
            }
            logger.info('maestrano: group deletion for a group never provisioned here; marked, so that a later first login is refused', fields);
            return SUCCESS();
          }
          group = probe.group;
        }
        if (group.status === 'cancelled') {
          // A replay, or Maestrano's retry after the follow-ups (or a last pass below) failed.
          // The follow-ups first (storage only), then the two last passes, each whatever the
          // other did: the bill pass needs the Account API, the block pass the app's hooks.
          const stored = await step('storage', () => enqueueFollowUps(tenant.name, groupId));
          if (stored > 0) logger.info('maestrano: follow-up jobs of a cancelled group stored', { ...fields, jobs: stored });
          await independently([
            async () => {
              if (deps.cancelRecurringBills) await lastBillPass(tenant, groupId, fields);
            },
            async () => {
              if (tenant.sso.creationMode === 'virtual') await blockGroupUsers(tenant, request, companyOf(group));
            },
          ]);
          return SUCCESS();
        }
        const company = companyOf(group);
        if (deps.cancelRecurringBills) {
          const cancelled = await step('account_api', () => cancelRecurringBills(tenant, groupId));
          if (cancelled.length > 0) logger.info('maestrano: recurring bills cancelled', { ...fields, cancelled });
        }
        if (hooks.cancelCompany) {
          await hookStep('cancelCompany', tenant, request, cancelCompanyKey(tenant.name, groupId), (ctx) => hooks.cancelCompany?.(company, ctx));
        }
        // Virtual mode (PROTOCOL §5.1): the group's users exist only through this group, so they are blocked too.
        const blocked = tenant.sso.creationMode === 'virtual' ? await blockGroupUsers(tenant, request, company) : [];
        // The group's status is written last: until then a retry redoes every (idempotent) step.
        await step('storage', () => storage.groups.cancel(tenant.name, groupId));
        // Then its durable follow-ups (storage only); should this fail, the 500 makes Maestrano
        // retry and the retry (which finds the group cancelled) stores them.
        const stored = await step('storage', () => enqueueFollowUps(tenant.name, groupId));
        // Two last passes, each run whatever the other did (the first error is answered after
        // both): a login that wrote its membership before the status changed (it holds no group
        // lock) is blocked by the block pass (one that writes it later sees the status and
        // withdraws); a subscription (`billing.subscribe`) whose POST was in flight during the
        // first bill pass (it checks the group's status once, before its POST) may have created
        // its recurring bill since, which the bill pass cancels (one landing later still finds
        // the group cancelled once it has recorded its bill, and cancels that bill itself).
        await independently([
          async () => {
            if (tenant.sso.creationMode === 'virtual') blocked.push(...(await blockGroupUsers(tenant, request, company)));
          },
          async () => {
            if (deps.cancelRecurringBills) await lastBillPass(tenant, groupId, fields);
          },
        ]);
        logger.info('maestrano: group cancelled', { ...fields, blockedUsers: blocked.length, followUpJobs: stored });
        return SUCCESS();
      });
      return answer ?? failure(503, 'busy', 'Another delivery for this group is running; please retry', { 'retry-after': '5' });
    } catch (error) {
      return failed(error, fields);
    }
  };

  const groupUserDeleted: RouteHandler = async ({ request, tenant, params }) => {
    if (!verifyTenantBasicAuth(request, tenant)) return invalidCredentialsResponse();
    const groupId = params.group_id;
    const rawUid = params.id ?? params.user_id;
    if (!groupId || !rawUid) return failure(400, 'bad_request', 'Missing group or user id');
    const uid = maskUser(rawUid, groupId, tenant.sso.creationMode);
    const fields = { tenant: tenant.name, groupId, uid, webhook: 'groupUserDeleted' };
    try {
      const answer = await withLock(userLockKey(tenant.name, uid), async () => {
        const memberships = await storage.users.listMemberships(tenant.name, { uid });
        const membership = memberships.find((m) => m.groupId === groupId);
        const [user, group] = await Promise.all([storage.users.get(tenant.name, uid), storage.groups.get(tenant.name, groupId)]);
        // The app user a login put in this company before it failed, the SDK never having
        // recorded the membership (see `pendingUserMark`): a first login's user the SDK never
        // recorded, or a known user added back after a removal whose membership is still that
        // removal. Only while the membership is still in the state that login started from, so
        // that once this removal is recorded (which moves `updatedAt`) a replay asks nothing more.
        const pending =
          group !== null && (user === null || removedAt(membership) !== null) ? await step('storage', () => pendingAppUser(tenant.name, uid, groupId, membership)) : null;
        if (membership?.status === 'removed' && !pending) {
          // Already removed: a replay, or a new removal after Maestrano added the user back
          // through a sign-in that failed before the SDK wrote anything (its response given back
          // for a retry). The two cannot be told apart; recording when this one came refuses
          // that response (issued before it), and a replay only costs a re-add made meanwhile
          // one refused sign-in (the next response is issued after it).
          await step('storage', () => noteRepeatedRemoval(storage, tenant.name, groupId, uid));
          return SUCCESS();
        }
        const company = group ? companyOf(group) : null;
        if ((pending && !user) || (!membership && (!user || !group))) {
          // The SDK never recorded this membership, but a first login may have failed after its
          // response was issued (its assertion id given back so the user can retry): the
          // removal is recorded as a `removed` membership, so that posting that response again
          // is refused (the login compares its `IssueInstant` with this record's `updatedAt`)
          // while one Maestrano issues after adding the user back still signs in. The app hears
          // it only when such a login had it put its user in the company (`pending`: no seat
          // was reported for it, and nobody is blocked: the SDK holds no user to block).
          if (pending && company && hooks.removeMembership) {
            const userRef: AccountUserRef = { id: pending.userId, tenant: tenant.name, uid };
            const key = `mno:remove-membership:${tenant.name}:${keyPart(uid)}:${keyPart(groupId)}:${pending.from === null ? 'unrecorded' : `unrecorded-${pending.from}`}`;
            await hookStep('removeMembership', tenant, request, key, (ctx) => hooks.removeMembership?.(userRef, company, ctx));
          }
          const tombstone = async (): Promise<void> => {
            await step('storage', () => storage.users.upsertMembership(tenant.name, uid, groupId, UNRECORDED_ROLE));
            await step('storage', () => storage.users.setMembershipStatus(tenant.name, uid, groupId, 'removed'));
          };
          if (!(await underSeatsLock(tenant.name, groupId, group !== null && hooks.onSeatsChanged !== undefined, tombstone))) return seatsBusy();
          if (pending) await dropPendingUser(storage, tenant.name, groupId, uid);
          if (pending) logger.info('maestrano: member removed whose first login failed before the SDK recorded the user; the app was told', { ...fields, userId: pending.userId });
          else logger.info('maestrano: member removal for a membership the app never granted; recorded so that an earlier response cannot grant it', fields);
          return SUCCESS();
        }
        // A known user and group without a membership record: a login whose membership write
        // failed after the app's `addMembership` accepted it (a storage outage) leaves the app
        // with a membership the SDK never recorded. The app's hooks still hear the removal (they
        // are idempotent: for a user who never joined, removing nothing is the answer), and the
        // seats are reported as for a recorded membership: that login reported the user's seat
        // before its write failed (see `#reconcileMembership`), and the app would count a member
        // the SDK never recorded until some later report. An active membership with the
        // placeholder role is what such a removal left when a later write of it failed: its
        // retry goes the same way. So does a removed membership a login that added the user back
        // left as it was (`pending`): the app holds the membership again, under a key naming the
        // removal that login started from (the removal before it may have used `unrecorded`; an
        // app skipping keys it has seen would ignore this one otherwise).
        const unrecorded = !membership || (membership.status === 'active' && membership.role === UNRECORDED_ROLE) || pending !== null;
        // Memberships of cancelled groups do not keep a user active (their company has ended).
        // Nor does the placeholder of another removal still being written (see `removedAt`).
        const others = memberships.filter((m) => m.groupId !== groupId && m.status === 'active' && removedAt(m) === null);
        const otherGroups = await Promise.all(others.map((m) => storage.groups.get(tenant.name, m.groupId)));
        const othersActive = otherGroups.some((g) => g !== null && g.status !== 'cancelled');
        // The SDK's user is blocked once no live group is left (PROTOCOL §5.2, real mode).
        // A group the SDK never knew (a retry of a removal recorded above whose second write
        // failed) takes nothing from the user. Where the SDK recorded no membership, a user it
        // holds blocked is blocked again: the login that had the app add this membership
        // failed before it set the user active, and the app's `addMembership` may have made
        // its user active again (`blockUser` must accept a user already blocked).
        // Nor where the membership is still active and the SDK holds the user blocked: a login
        // adding a blocked user to a group (`addMembership` may make its user active again)
        // wrote the membership and failed before setting the user active, and the app would
        // keep that user active with no group left (a retry of a removal whose block was
        // written calls `blockUser` again with the same key).
        const block = user !== null && (user.status === 'active' || unrecorded || membership?.status === 'active') && group !== null && !othersActive;
        // One removal of this membership: a retry keeps the key, a later removal (after the
        // user was added back, which moves `updatedAt`) gets a new one.
        const state = membership && !unrecorded ? membership.updatedAt.getTime() : pending?.from != null ? `unrecorded-${pending.from}` : 'unrecorded';
        const removal = `${tenant.name}:${keyPart(uid)}:${keyPart(groupId)}:${state}`;

        // 1. Hooks first: a throw leaves everything as it was. `removeMembership` ends the
        //    user's access to this company on every removal; `blockUser` follows once the
        //    user has no live group left.
        const userRef: AccountUserRef | null = user ? { id: user.userId, tenant: tenant.name, uid } : null;
        if (userRef && company && hooks.removeMembership) {
          await hookStep('removeMembership', tenant, request, `mno:remove-membership:${removal}`, (ctx) => hooks.removeMembership?.(userRef, company, ctx));
        }
        if (block && userRef && company && hooks.blockUser) {
          await hookStep('blockUser', tenant, request, `mno:block-user:${removal}`, (ctx) => hooks.blockUser?.(userRef, company, ctx));
        }
        // 2. The seat report and the SDK's state. With `onSeatsChanged`, the group's seats lock
        //    is held around recount + callback + write (after the user lock: the fixed order),
        //    so concurrent seat changes of one group report one after the other, each counting
        //    the writes before it: the last report carries the real count.
        // Without `onSeatsChanged` nothing is counted: no removal needs the count for anything else.
        const report = async (): Promise<number | null> => {
          if (!company || !hooks.onSeatsChanged) return null;
          // Counted by the store, not listed: a group may hold tens of thousands of members.
          // Another removal's placeholder, left active between its writes, is no seat (the
          // count leaves `UNRECORDED_ROLE` out).
          const seats = await step('storage', () => storage.users.seats(tenant.name, groupId, { exceptUid: uid }));
          const activeSeats = seats.active;
          // The key names the group's membership state the count comes from (its latest
          // change), as a login's report does: a retry with nothing changed reports under the
          // same key, but one after other members joined or left meanwhile (this removal's
          // first attempt reported, then its write failed) is a new report, not a duplicate
          // to skip; keyed by the removal alone, the app kept the count of the report between.
          // The removed user's own membership is left out, as in the count: `removal` names
          // it, and an unrecorded removal writes its placeholder after reporting, so that its
          // retry (a later write failed) would otherwise report the same count under a new key.
          const state = Math.max(0, seats.latestChange?.getTime() ?? 0);
          await hookStep('onSeatsChanged', tenant, request, `mno:seats:${removal}:removed:${activeSeats}:${state}`, (ctx) => hooks.onSeatsChanged?.(company, { activeSeats, added: [], removed: [uid] }, ctx));
          return activeSeats;
        };
        const commit = async (held: () => void): Promise<number | null> => {
          const activeSeats = await report();
          held();
          // Then the SDK's state: the block before the membership, so that a retry after a
          // failure between the two still finds the membership active and finishes the removal
          // (the other order relied on undoing the first write, which an outage refuses too,
          // and the retry then found the membership removed and never blocked the user). The
          // block is not undone when the second write fails: that write may have committed
          // (a connection lost after COMMIT), and the retry would then find the membership
          // removed and never block again; left in place, the retry finds the user blocked
          // and the membership active, and completes the removal.
          if (block) await step('storage', () => storage.users.setStatus(tenant.name, uid, 'blocked'));
          await step('storage', () => storage.users.setMembershipStatus(tenant.name, uid, groupId, 'removed'));
          return activeSeats;
        };
        if (unrecorded) {
          // The removal is recorded as a `removed` membership: a login waiting for this user's
          // lock sees it and is refused (403), as for a recorded membership, and a later removal
          // (after Maestrano added the user back) keys on its own `updatedAt`. The role is a
          // placeholder (the login that adds the user back writes the assertion's). Written
          // under the seats lock when seats are reported: it is briefly active between the writes.
          // The block comes before the status: a retry after any failed write finds the
          // placeholder (or nothing) and takes this path again, never a half-done removal.
          // The seats are reported first, as in `commit` (the count leaves this user out), when
          // a login may have reported this user's seat: one records the user before it reports.
          // A membership still removed (`pending`) is written over the same way, so that its
          // `updatedAt` moves: the response of the login that failed (issued after the earlier
          // removal) no longer signs the user in, and the note no longer matches.
          const record = async (held: () => void): Promise<void> => {
            if (user && company && hooks.onSeatsChanged) await report();
            held();
            if (!membership || membership.status === 'removed') await step('storage', () => storage.users.upsertMembership(tenant.name, uid, groupId, UNRECORDED_ROLE));
            if (block) await step('storage', () => storage.users.setStatus(tenant.name, uid, 'blocked'));
            await step('storage', () => storage.users.setMembershipStatus(tenant.name, uid, groupId, 'removed'));
          };
          if (!(await underSeatsLock(tenant.name, groupId, hooks.onSeatsChanged !== undefined, record))) return seatsBusy();
          if (pending) await dropPendingUser(storage, tenant.name, groupId, uid);
          logger.info('maestrano: member removed (no membership was recorded)', { ...fields, blocked: block });
          return SUCCESS();
        }
        const committed = await underSeatsLock(tenant.name, groupId, company !== null && hooks.onSeatsChanged !== undefined, commit);
        if (!committed) return seatsBusy();
        logger.info('maestrano: member removed', { ...fields, blocked: block, ...(committed.value === null ? {} : { activeSeats: committed.value }) });
        return SUCCESS();
      });
      return answer ?? failure(503, 'busy', 'Another delivery for this user is running; please retry', { 'retry-after': '5' });
    } catch (error) {
      return failed(error, fields);
    }
  };

  /**
   * The app user of `pendingUserMark` for `uid` in the group, when the membership is still in
   * the state the login that wrote it started from (none, or the removal it found); else null.
   * Also when the membership is the placeholder this removal wrote over that removal and left
   * active (its next write failed, the note is dropped only once both are written): the retry
   * is the same removal, and keeps its keys (`unrecorded-<from>`; reading the placeholder
   * alone, it would call the hooks again as `unrecorded`). Only a removal recording a note's
   * `from` writes a placeholder over a removed membership (a note naming one has one), and a
   * login adding the user back after it writes a note of its own: no `updatedAt` comparison,
   * which a clock stepped back between the two writes would get wrong.
   */
  async function pendingAppUser(tenant: string, uid: string, groupId: string, membership: MembershipRecord | undefined): Promise<{ userId: string; from: number | null } | null> {
    const mark = await storage.cursors.get({ tenant, groupId, ...pendingUserMark(uid) });
    const userId = mark?.data['userId'];
    const from = mark?.data['from'];
    if (typeof userId !== 'string' || userId.length === 0 || !(from === null || typeof from === 'number')) return null;
    if (from === (membership ? membership.updatedAt.getTime() : null)) return { userId, from };
    const halfWritten = membership?.status === 'active' && membership.role === UNRECORDED_ROLE;
    return halfWritten && typeof from === 'number' ? { userId, from } : null;
  }

  /**
   * Runs `write` under the group's seats lock when `needed` (seats are reported), else as it
   * is; null when the lock stayed taken.
   */
  async function underSeatsLock<T>(tenant: string, groupId: string, needed: boolean, write: (held: () => void) => Promise<T>): Promise<{ value: T } | null> {
    if (!needed) return { value: await write(() => {}) };
    const owner = `${deps.instanceId}:webhook-seats:${randomUUID()}`;
    // Renewed while `onSeatsChanged` runs, however long it takes (a report slower than the lease
    // otherwise let another seat change of the group count this member and report meanwhile).
    // `held` throws once the lock may have passed to another seat change: its count did not
    // follow this one's writes, so they are not made (503; the retry reports again).
    const lost = new SeatsLockLost();
    try {
      const seats = await withStorageLock(storage, seatsLockKey(tenant, groupId), { owner, ttlMs: lockTtlMs, waitMs: lockWaitMs, logger, renew: true }, (lease) =>
        write(() => {
          if (!lease.held()) throw lost;
        }),
      );
      return seats.acquired ? { value: seats.value } : null;
    } catch (error) {
      if (error !== lost) throw error;
      logger.warn('maestrano: lost the seats lock of a group before the removal was written; answering 503 for a retry', { tenant, groupId });
      return null;
    }
  }

  function seatsBusy(): Response {
    return failure(503, 'busy', 'Another seat change of this group is running; please retry', { 'retry-after': '5' });
  }

  /**
   * Calls one of the app's hooks as a step. The webhook stops waiting for it after three lock
   * leases (`hookGiveUpMs`), as a login does after three claim TTLs, and aborts its `ctx.signal`
   * then: a hook that never settles must not hold the webhook's locks (renewed while it runs) for
   * good, the group's seats lock above all, which every login adding a member waits for. The
   * step fails (500, nothing written); the retry calls it again under the same key.
   */
  async function hookStep(name: string, tenant: Tenant, request: Request, idempotencyKey: string, run: (ctx: AccountHookContext) => Promise<void> | void): Promise<void> {
    // The request's abort is passed on by a listener removed once the step is over, not joined
    // with `AbortSignal.any`: on Node 20 a joined signal the hook left an abort listener on
    // stays referenced by the process for good (it never aborts), one more per hook call.
    const hook = new AbortController();
    const hungUp = () => hook.abort(request.signal.reason);
    if (request.signal.aborted) hungUp();
    else request.signal.addEventListener('abort', hungUp, { once: true });
    const ctx: AccountHookContext = { tenant, logger, signal: hook.signal, idempotencyKey };
    const givenUp = () => {
      const error = new Error(`${name} did not settle within ${hookGiveUpMs} ms; the webhook stopped waiting`);
      hook.abort(error);
      return error;
    };
    try {
      await step(name, () => withDeadline(Promise.resolve().then(() => run(ctx)), hookGiveUpMs, givenUp));
    } finally {
      request.signal.removeEventListener('abort', hungUp);
    }
  }

  return { groupDeleted, groupUserDeleted };
}

/** Thrown by `underSeatsLock`'s `held` once the seats lock may belong to another seat change. */
class SeatsLockLost extends Error {}

function companyOf(group: GroupRecord): AccountCompanyRef {
  return { id: group.companyId, tenant: group.tenant, groupId: group.groupId };
}
