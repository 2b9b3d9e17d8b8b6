import { randomUUID } from 'node:crypto';
import { noteFailedStep } from '../internal/failed-step.js';
import { takeOrGiveBack } from '../internal/give-back.js';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type CompanyCreatedPayload,
  cancelCompanyKey,
  dropPendingUser,
  GROUP_COMPANY_MARK,
  GROUP_DELETED_MARK,
  groupReadyWaitKey,
  lastRemovalAt,
  JobTypes,
  notePendingUser,
  pendingUserMark,
  type Runtime,
  recordedCompanyId,
  removedAt,
  type Tenant,
} from '../core/types.js';
import { SsoError, StorageConflictError, StorageError } from '../errors/index.js';
import type { GroupRecord, MembershipRecord, ProvisionClaim, UserRecord } from '../storage/adapter.js';
import { seatsLockKey, userLockKey, withStorageLock } from '../webhooks/locks.js';
import { groupPayload, type SsoIdentity } from './attributes.js';
import type {
  AppRecordRef,
  CompanyHandle,
  LoginOutcome,
  ProvisioningContext,
  ProvisioningHooks,
  UserHandle,
} from './types.js';
import { keyPart } from '../internal/keys.js';
import { monotonicMs } from '../internal/time.js';

export interface ProvisionOptions {
  claimTtlMs: number;
}

export interface ProvisionResult {
  user: UserHandle;
  company: CompanyHandle;
  outcome: LoginOutcome;
}

/** How long a login waits for a group's seats lock (held only around one seat change) before answering 503. */
const SEATS_LOCK_WAIT_MS = 10_000;
/** The jobs `company.created` fans out, which wait for the group to be provisioned. */
const FOLLOW_UPS: ReadonlySet<string> = new Set([JobTypes.billingSubscribe, JobTypes.syncImport]);

const FAILED_MESSAGE = 'Your account could not be set up, please try again';

/** The login's user: known (`pending` false), or claimed and recorded only once the login is granted. */
interface EnsuredUser {
  userId: string;
  status: UserRecord['status'];
  created: boolean;
  linked: boolean;
  company: { record: GroupRecord; created: boolean } | null;
  pending: boolean;
}

function failed(detail: string, cause?: unknown, status = 500): SsoError {
  const error = new SsoError('provisioning_failed', FAILED_MESSAGE, {
    status,
    cause: cause instanceof Error ? cause : new Error(cause === undefined ? detail : `${detail}: ${String(cause)}`),
  });
  noteFailedStep(error, detail);
  return error;
}

/** The refusals `accountCancelled` made (a login into a cancelled group). */
const cancelledRefusals = new WeakSet<Error>();

/** The 503s of `userLockContended`. */
const userLockFailures = new WeakSet<Error>();

/**
 * The 503 of a login that could not hold its user's lock (gave up waiting, or lost it): the
 * holder may be a member removal, which the same response must not get past on a retry.
 */
function userLockContended(detail: string): SsoError {
  const error = failed(detail, undefined, 503);
  userLockFailures.add(error);
  return error;
}

/** Whether `error` is a login's failure to hold its user's lock (see `userLockContended`). */
export function isUserLockContended(error: unknown): boolean {
  return error instanceof Error && userLockFailures.has(error);
}

/** The 403 of a login into a group Maestrano deleted (service cancelled). */
function accountCancelled(): SsoError {
  const error = new SsoError('provisioning_failed', 'This account has been cancelled', { status: 403 });
  cancelledRefusals.add(error);
  return error;
}

/** The 403 of a login whose membership Maestrano removed after issuing its response. */
function accessRemoved(): SsoError {
  return new SsoError('provisioning_failed', 'Your access to this account has been removed', { status: 403 });
}

/** Hook failures become `provisioning_failed`; storage failures pass through (the ACS answers them 503). */
function wrapped(error: unknown, detail: string): unknown {
  return error instanceof SsoError || error instanceof StorageError ? error : failed(detail, error);
}

/**
 * A hook's answer, or a 503 once `giveUpMs` have passed. A slow hook may outlast its claim
 * (another login takes over, and both finish with one idempotency key), but one that ignores
 * its `ctx.signal` and never settles must not hold the login, its HTTP request and its locks
 * for good.
 */
function settledWithin<T>(hook: string, giveUpMs: number, answer: T | PromiseLike<T>, late?: (value: Awaited<T>) => void): Promise<Awaited<T>> {
  return new Promise<Awaited<T>>((resolve, reject) => {
    let givenUp = false;
    const timer = setTimeout(() => {
      givenUp = true;
      reject(failed(`provisioning.${hook} did not settle within ${giveUpMs} ms; the SDK stopped waiting`, undefined, 503));
    }, giveUpMs);
    Promise.resolve(answer).then(
      (value) => {
        clearTimeout(timer);
        if (givenUp) late?.(value as Awaited<T>);
        else resolve(value as Awaited<T>);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

function checkRef(value: unknown, hook: string): AppRecordRef {
  if (typeof value === 'object' && value !== null) {
    const id = (value as { id?: unknown }).id;
    if (typeof id === 'string' && id.length > 0) return { id };
    if (typeof id === 'number' && Number.isFinite(id)) return { id: String(id) };
  }
  throw failed(`provisioning.${hook} must return { id: string }`);
}

/**
 * Runs the provisioning rules of one login, in order (ARCHITECTURE §4): known uid -> log
 * in; unknown uid whose email matches `findUserByEmail` -> link and log in; known group ->
 * create the user in it; unknown group -> create the company, then the user. The company is ensured before a
 * user is linked or created, so a refused login (cancelled group, failing hook) records
 * nothing about the user. Memberships and roles are reconciled on every login.
 *
 * Race safety comes from the storage claims: of N concurrent first logins for one new group
 * (or user) exactly one creates it, the others wait until it is complete (or its claim
 * expires and they take over). A hook that throws releases the claim, so nothing is
 * half-created and the next login retries with the same idempotency key. The
 * `company.created` job is enqueued before the group claim completes, so a crash between
 * the two cannot lose it (the job's dedupe key makes the retry a no-op).
 */
export class Provisioner {
  readonly #runtime: Runtime;
  readonly #hooks: ProvisioningHooks;
  readonly #options: ProvisionOptions;

  constructor(runtime: Runtime, hooks: ProvisioningHooks, options: ProvisionOptions) {
    this.#runtime = runtime;
    this.#hooks = hooks;
    this.#options = options;
  }

  /**
   * Calls the app's `hook` with a fresh context: its failure names the hook in the log, and the
   * SDK stops waiting for it (503) three claim TTLs after its `ctx.signal` started.
   */
  async #call<T>(
    hook: string,
    tenant: Tenant,
    idempotencyKey: string,
    run: (ctx: ProvisioningContext) => T | PromiseLike<T>,
    late?: (value: Awaited<T>) => void,
  ): Promise<Awaited<T>> {
    try {
      return await settledWithin(hook, 3 * this.#options.claimTtlMs, run(this.#ctx(tenant, idempotencyKey)), late);
    } catch (error) {
      throw wrapped(error, `${hook} failed`);
    }
  }

  #ctx(tenant: Tenant, idempotencyKey: string): ProvisioningContext {
    return {
      tenant,
      logger: this.#runtime.logger,
      signal: AbortSignal.timeout(this.#options.claimTtlMs),
      idempotencyKey,
    };
  }

  /** Polls until `get` finds the record another owner is creating, or its claim has expired. */
  async #await<T>(
    get: () => Promise<T | null>,
    claim: () => Promise<ProvisionClaim<T>>,
    what: string,
  ): Promise<{ record: T } | { claimed: true }> {
    const deadline = monotonicMs() + this.#options.claimTtlMs + 5_000;
    let delay = 10;
    for (;;) {
      const existing = await get();
      if (existing) return { record: existing };
      const result = await claim();
      if (result.state === 'exists') return { record: result.record };
      if (result.state === 'claimed') return { claimed: true };
      if (monotonicMs() > deadline) throw failed(`timed out waiting for the concurrent creation of ${what}`, undefined, 503);
      await sleep(delay);
      delay = Math.min(delay * 2, 200);
    }
  }

  /**
   * Puts back in the queue the company's follow-up jobs (subscription, initial import) that
   * became dead letters while they waited for this group: each deferral counts as an attempt,
   * so a user signing in again more than about 80 minutes after a first login that never
   * completed (a crash, a storage outage) found them dead, and the company was never
   * subscribed nor imported. Best effort, like the wake-up: a failure is logged.
   */
  async #reviveFollowUps(tenant: string, groupId: string): Promise<void> {
    const storage = this.#runtime.storage;
    try {
      const dead = await storage.jobs.listDead({ tenant, groupId, limit: 100 });
      for (const job of dead) {
        if (!FOLLOW_UPS.has(job.type) || job.lastError?.code !== 'deferred') continue;
        if (await storage.jobs.requeue(job.id)) {
          this.#runtime.logger.info('maestrano: a follow-up job that died waiting for its group is queued again', { tenant, groupId, jobId: job.id, type: job.type });
        }
      }
    } catch (error) {
      this.#runtime.logger.warn('maestrano: could not queue again the follow-up jobs that died waiting for a provisioned group', {
        tenant,
        groupId,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  async #ensureCompany(tenant: Tenant, identity: SsoIdentity, owner: string): Promise<{ record: GroupRecord; created: boolean }> {
    const { storage } = this.#runtime;
    const group = identity.group;
    const claimOptions = { owner, ttlMs: this.#options.claimTtlMs };
    for (;;) {
      const state = await this.#await(
        () => storage.groups.get(tenant.name, group.uid),
        () => takeOrGiveBack(
          () => storage.groups.claim(tenant.name, group.uid, claimOptions),
          () => storage.groups.release(tenant.name, group.uid, owner),
        ),
        `group ${group.uid}`,
      );
      if ('record' in state) {
        // Maestrano deleted this group (service cancelled): no new user or login in it.
        if (state.record.status === 'cancelled') throw accountCancelled();
        return { record: state.record, created: false };
      }
      try {
        // Maestrano deleted the group before anyone signed in to it (the webhook left a mark
        // under a claim of its own, so a login claims either before the mark or sees it).
        await this.#refuseDeleted(tenant, group.uid);
        const company = checkRef(
          await this.#call(
            'createCompany',
            tenant,
            `mno:company:${tenant.name}:${group.uid}`,
            (ctx) => this.#hooks.createCompany(group, ctx),
            (late) => void this.#recordLateCompany(tenant, group.uid, late),
          ),
          'createCompany',
        );
        // Recorded before anything else: a deletion of a group whose login dies from here on
        // finds the company and cancels it.
        await storage.cursors.advance({ tenant: tenant.name, groupId: group.uid, ...GROUP_COMPANY_MARK }, this.#runtime.clock().getTime(), {
          companyId: company.id,
        });
        // A deletion that took our claim over meanwhile (a `createCompany` outlasting it) may
        // have looked for that record before it was written. It writes its mark, then reads the
        // record; this login writes the record, then reads the mark: one of the two sees the
        // other and cancels the company.
        await this.#refuseDeleted(tenant, group.uid);
        const payload = {
          tenant: tenant.name,
          groupId: group.uid,
          companyId: company.id,
          group: groupPayload(group),
        } satisfies CompanyCreatedPayload;
        await storage.jobs.enqueue({
          type: JobTypes.companyCreated,
          tenant: tenant.name,
          groupId: group.uid,
          dedupeKey: `company.created:${tenant.name}:${group.uid}`,
          payload,
        });
        const record = await storage.groups.complete(tenant.name, group.uid, owner, {
          companyId: company.id,
          orgUid: group.orgUid,
          trialEndsAt: group.endFreeTrial,
        });
        // The company's follow-up jobs (billing, import) may already wait for this group: a
        // first login whose completion failed (or whose process died) queued them. Failing to
        // wake them only delays them.
        await storage.jobs.wake(groupReadyWaitKey(tenant.name, group.uid)).catch((error: unknown) => {
          this.#runtime.logger.warn('maestrano: could not wake the jobs waiting for a provisioned group', {
            tenant: tenant.name,
            groupId: group.uid,
            error: error instanceof Error ? error.message : String(error),
          });
        });
        await this.#reviveFollowUps(tenant.name, group.uid);
        return { record, created: true };
      } catch (error) {
        // Our claim expired and another login took over: it finishes the job.
        if (error instanceof StorageConflictError) continue;
        await storage.groups.release(tenant.name, group.uid, owner).catch(() => {});
        throw wrapped(error, 'company provisioning failed');
      }
    }
  }

  /**
   * A company `createCompany` created after the login gave up on it (503): recorded as the
   * login would have, so that a deletion of the group finds and cancels it; a deletion that
   * came first (it found none) has it cancelled here. A retried login gets it again by its key.
   */
  async #recordLateCompany(tenant: Tenant, groupId: string, value: unknown): Promise<void> {
    const { storage, logger } = this.#runtime;
    try {
      const companyId = checkRef(value, 'createCompany').id;
      if ((await recordedCompanyId(storage, tenant.name, groupId)) === null) {
        await storage.cursors.advance({ tenant: tenant.name, groupId, ...GROUP_COMPANY_MARK }, this.#runtime.clock().getTime(), { companyId });
      }
      if (!(await storage.cursors.get({ tenant: tenant.name, groupId, ...GROUP_DELETED_MARK }))) return;
      const hook = this.#hooks.cancelCompany;
      if (hook) await hook({ id: companyId, tenant: tenant.name, groupId }, this.#ctx(tenant, cancelCompanyKey(tenant.name, groupId)));
    } catch (error) {
      logger.error('maestrano: could not record a company createCompany created after the login gave up on it', {
        tenant: tenant.name,
        groupId,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  /**
   * Refuses a login into a group Maestrano deleted before it was provisioned here. A company an
   * earlier login of that group created (and recorded) is cancelled first, with the deletion's
   * idempotency key: should that fail, the login fails and its retry cancels it again.
   */
  async #refuseDeleted(tenant: Tenant, groupId: string): Promise<void> {
    const { storage } = this.#runtime;
    if (!(await storage.cursors.get({ tenant: tenant.name, groupId, ...GROUP_DELETED_MARK }))) return;
    const companyId = await recordedCompanyId(storage, tenant.name, groupId);
    const hook = this.#hooks.cancelCompany;
    if (companyId !== null && hook) {
      await this.#call('cancelCompany', tenant, cancelCompanyKey(tenant.name, groupId), (ctx) => hook({ id: companyId, tenant: tenant.name, groupId }, ctx));
    }
    throw accountCancelled();
  }

  /**
   * Account linking (1.4.1): the app user `findUserByEmail` returns for the user's email, or
   * null. In virtual mode only by the per-group address (`virtual_email`): a response without
   * one falls back to the real email, the same for every group of the person, and linking by
   * it would give all of them one app user (PROTOCOL §3.5: one app user per group), which a
   * deletion of any one group then blocks.
   */
  async #linkableUser(tenant: Tenant, identity: SsoIdentity, idempotencyKey: string): Promise<string | null> {
    const hook = this.#hooks.findUserByEmail;
    if (!hook) return null;
    if (tenant.sso.creationMode === 'virtual' && identity.user.appEmail === identity.user.email) return null;
    const found = await this.#call('findUserByEmail', tenant, idempotencyKey, (ctx) => hook(identity.user.appEmail, ctx));
    return found ? checkRef(found, 'findUserByEmail').id : null;
  }

  async #ensureUser(
    tenant: Tenant,
    identity: SsoIdentity,
    owner: string,
    seenRemoved: Date | null,
  ): Promise<EnsuredUser> {
    const { storage } = this.#runtime;
    const key = identity.user.key;
    const claimOptions = { owner, ttlMs: this.#options.claimTtlMs };
    for (;;) {
      const state = await this.#await(
        () => storage.users.get(tenant.name, key),
        () => takeOrGiveBack(
          () => storage.users.claim(tenant.name, key, claimOptions),
          () => storage.users.release(tenant.name, key, owner),
        ),
        `user ${key}`,
      );
      if ('record' in state) return { userId: state.record.userId, status: state.record.status, created: false, linked: false, company: null, pending: false };
      try {
        // The company first, for a link as for a new user: a cancelled group or a failing
        // `createCompany` refuses the login before anything about the user is recorded.
        const company = await this.#ensureCompany(tenant, identity, owner);
        // Then the removals: one that landed while this login waited for the user's lock is
        // over (it found no user to tell the app about), so an app user `createUser` made
        // inside the company now would be left there, refused by `#grant` with no removal
        // to come. Refused before the app is asked (`#grant` checks again, for known users).
        const from = await this.#refuseRemoved(tenant, identity, seenRemoved);
        const idempotencyKey = `mno:user:${tenant.name}:${key}`;
        let userId = await this.#linkableUser(tenant, identity, idempotencyKey);
        // The app user `createUser` made for an earlier attempt of this login (refused before the
        // user was recorded, see below): `findUserByEmail` finds it by the email it was created
        // with, but this user is new to the app, not an existing account it was linked to.
        const earlier = userId === null ? null : await storage.cursors.get({ tenant: tenant.name, groupId: identity.group.uid, ...pendingUserMark(key) });
        const linked = userId !== null && !(earlier?.data['created'] === true && earlier.data['userId'] === userId);
        if (userId === null) {
          const handle: CompanyHandle = { id: company.record.companyId, tenant: tenant.name, groupId: identity.group.uid };
          const created = await this.#call('createUser', tenant, idempotencyKey, (ctx) => this.#hooks.createUser(identity.user, handle, ctx));
          userId = checkRef(created, 'createUser').id;
        }
        // Recorded by `provision` once the app has accepted the user's membership: a login
        // refused before that releases the claim and records neither the new user nor the
        // email link, so its retry reports them.
        //
        // But the app may hold a membership of this user from here on (`createUser` creates it
        // inside the company, `addMembership` comes next), and the login can still fail before
        // the user is recorded (the seats lock timing out, storage failing on `users.complete`,
        // an `addMembership` that committed and then threw or outlasted the SDK's wait, the
        // process dying).
        // A member removal arriving before the user's retry must still reach the app's
        // `removeMembership`, so the app user is noted for the webhook first (`pendingUserMark`,
        // with the membership state this login starts from). Recording the user itself right
        // after `addMembership` instead would leave every failure before and during that write
        // uncovered (and the retry would no longer report `userCreated` / `linkedByEmail`); the
        // note covers all of them but the process dying between `createUser` returning and
        // this write, as for the company (`GROUP_COMPANY_MARK`). A login refused before the app
        // accepted leaves only the note: a removal then asks the app to remove a membership it
        // may not hold, which `removeMembership` must accept (removing nothing).
        await notePendingUser(storage, tenant.name, identity.group.uid, key, this.#runtime.clock().getTime(), { userId, from: from ? from.updatedAt.getTime() : null, created: !linked });
        return { userId, status: 'active', created: !linked, linked, company, pending: true };
      } catch (error) {
        if (error instanceof StorageConflictError) continue;
        await storage.users.release(tenant.name, key, owner).catch(() => {});
        throw wrapped(error, 'user provisioning failed');
      }
    }
  }

  /**
   * Provisions the login's user and company, then runs `finish` (the app's `onLogin`) with the
   * result. From the user record to `finish`, the login holds the user's lock, the one the
   * member removal webhook takes: a removal that arrives meanwhile waits (or is answered 503
   * and retried by Maestrano) and then removes the membership this login wrote, instead of
   * being undone by it. A removal that lands while this login waits for the lock refuses
   * the login (403), and so does one recorded after the assertion was issued, however long
   * before the login began (see `#issuedAfterRemoval`): only an assertion Maestrano issued
   * after the removal means it has added the user back.
   */
  async provision<T>(tenant: Tenant, identity: SsoIdentity, finish: (result: ProvisionResult) => T | Promise<T>): Promise<T> {
    const { storage } = this.#runtime;
    const uid = identity.user.key;
    const groupId = identity.group.uid;
    const [seen] = await storage.users.listMemberships(tenant.name, { uid, groupId });
    // Removed before this response was issued: refused before the app is asked to create
    // anything (the check under the lock below still decides for removals landing meanwhile).
    // A removal whose second write failed (its placeholder still active) counts as made.
    const seenRemoved = await lastRemovalAt(storage, tenant.name, groupId, uid, seen);
    if (seenRemoved !== null && !this.#issuedAfterRemoval(identity, seenRemoved)) throw accessRemoved();
    const locked = await withStorageLock(
      storage,
      userLockKey(tenant.name, uid),
      {
        owner: `${this.#runtime.instanceId}:sso-user:${randomUUID()}`,
        ttlMs: this.#options.claimTtlMs,
        waitMs: this.#options.claimTtlMs,
        logger: this.#runtime.logger,
        // Hooks and `onLogin` may outlast one lease: renewed while they run.
        renew: true,
      },
      async (lease) => {
        const owner = `${this.#runtime.instanceId}:${randomUUID()}`;
        const user = await this.#ensureUser(tenant, identity, owner, seenRemoved);
        try {
          return await this.#grant(tenant, identity, owner, user, seenRemoved, lease, finish);
        } catch (error) {
          if (user.pending) await storage.users.release(tenant.name, uid, owner).catch(() => {});
          throw error;
        }
      },
    );
    if (!locked.acquired) throw userLockContended(`timed out waiting for the lock of user ${uid}`);
    return locked.value;
  }

  /** The rest of a login once its user is known (or claimed): company, checks, membership, `finish`. */
  async #grant<T>(
    tenant: Tenant,
    identity: SsoIdentity,
    owner: string,
    user: EnsuredUser,
    seenRemoved: Date | null,
    lease: { held(): boolean },
    finish: (result: ProvisionResult) => T | Promise<T>,
  ): Promise<T> {
    const { storage } = this.#runtime;
    const uid = identity.user.key;
    const groupId = identity.group.uid;
        // Refused because the group is cancelled: what an earlier login of this user granted in
        // it and could not withdraw (a hook or storage failure) is withdrawn first.
        const refuseCancelled = async (): Promise<never> => {
          if (!user.pending) await this.#withdrawIfHeld(tenant, uid, groupId, user.userId);
          throw accountCancelled();
        };
        let company: { record: GroupRecord; created: boolean };
        try {
          company = user.company ?? (await this.#ensureCompany(tenant, identity, owner));
        } catch (error) {
          if (error instanceof Error && cancelledRefusals.has(error)) await refuseCancelled();
          throw error;
        }
        if (identity.group.orgUid && company.record.orgUid !== identity.group.orgUid) {
          await storage.groups.update(tenant.name, groupId, { orgUid: identity.group.orgUid });
        }
        // A group deletion does not take the user's lock: look again before granting anything.
        if (await this.#groupCancelled(tenant, groupId)) await refuseCancelled();
        const current = await this.#refuseRemoved(tenant, identity, seenRemoved);
        const currentRemoved = removedAt(current);
        const userHandle: UserHandle = { id: user.userId, tenant: tenant.name, uid };
        const companyHandle: CompanyHandle = { id: company.record.companyId, tenant: tenant.name, groupId };
        // A new (or email-linked) user is recorded once the app has accepted its membership and
        // before the SDK writes any membership: a login refused before that (the group cancelled,
        // the membership removed, `addMembership` throwing) records neither the user nor the
        // link, so its retry reports them; and from the membership write on, the user exists for
        // the webhooks (a group deletion's last pass, a member removal) as it always did. A login
        // failing between the app's acceptance and this record left a `pendingUserMark` (see
        // `#ensureUser`), through which a member removal still reaches the app.
        const recordUser = async () => {
          if (!user.pending) return;
          try {
            await storage.users.complete(tenant.name, uid, owner, { userId: user.userId });
          } catch (error) {
            // Only another login holding this user's lock could take the claim over.
            throw error instanceof StorageConflictError ? failed(`the provisioning claim of user ${uid} was taken over`, error, 503) : error;
          }
          user.pending = false;
        };
        // A known user Maestrano adds back after a removal: `addMembership` puts the user back in
        // the company, and the login can still fail before the membership is written active
        // (the seats lock timing out, storage failing, the process dying). The membership is
        // then still the removal a member removal webhook takes as done, and the app would keep
        // the user: the app user is noted for the webhook first, as for a first login (see
        // `#ensureUser`, which noted a new or linked user already), with the removal this login
        // starts from. Only here: a login that changes nothing, or a role, writes no note, and a
        // known user's first membership of a group needs none (the webhook hears a removal of a
        // known user without a membership record all the same).
        const readding = !(user.created || user.linked) && currentRemoved !== null;
        if (readding) {
          await notePendingUser(storage, tenant.name, groupId, uid, this.#runtime.clock().getTime(), { userId: user.userId, from: currentRemoved.getTime() });
        }
        const membershipChanged = await this.#reconcileMembership(tenant, identity, userHandle, companyHandle, current, recordUser);
        // The user and the membership are recorded: the note for the removal webhook
        // (`pendingUserMark`) is inert now, and dropped so that a group keeps no row per member
        // who ever signed in (left in place when that fails: it only costs its row).
        if (user.created || user.linked || readding) await dropPendingUser(storage, tenant.name, groupId, uid);
        // A signed assertion for this group means Maestrano has the user in it again: a user the
        // removal webhook blocked is active from here on, so a later removal blocks it again.
        const status = user.created || user.linked ? 'active' : ((await storage.users.get(tenant.name, uid))?.status ?? user.status);
        if (status !== 'active') {
          await storage.users.setStatus(tenant.name, uid, 'active');
          // A group deletion's block pass (virtual mode; it takes no user lock) that ran between
          // the membership write and the status read found the user still blocked: it removed
          // the membership and told the app nothing, and the group is not cancelled yet. The
          // user just made active would stay so in the deleted group: blocked again, refused.
          const [written] = await storage.users.listMemberships(tenant.name, { uid, groupId });
          if (written?.status !== 'active') await refuseCancelled();
        }
        // A deletion that cancelled the group while the membership was written: its last pass
        // (virtual mode) may have missed this membership, so the login withdraws it (503 when
        // that fails: the retry is refused as cancelled and finishes the withdrawal first).
        if (await this.#groupCancelled(tenant, groupId)) await refuseCancelled();
        // The lock may have passed to a removal (renewals refused or unconfirmed): no session.
        if (!lease.held()) throw userLockContended(`lost the lock of user ${uid} before onLogin`);
        return finish({
          user: userHandle,
          company: companyHandle,
          outcome: {
            companyCreated: company.created,
            userCreated: user.created,
            linkedByEmail: user.linked,
            membershipChanged,
          },
        });
  }

  /**
   * The user's membership of the login's group, as storage has it now (read under the user's
   * lock); refused (403) when it was removed after `seenRemoved` (the removal seen before the
   * lock: one that landed while the login waited), or before the assertion was issued.
   */
  async #refuseRemoved(tenant: Tenant, identity: SsoIdentity, seenRemoved: Date | null): Promise<MembershipRecord | undefined> {
    const [current] = await this.#runtime.storage.users.listMemberships(tenant.name, { uid: identity.user.key, groupId: identity.group.uid });
    const currentRemoved = await lastRemovalAt(this.#runtime.storage, tenant.name, identity.group.uid, identity.user.key, current);
    if (currentRemoved !== null && !(seenRemoved?.getTime() === currentRemoved.getTime() && this.#issuedAfterRemoval(identity, currentRemoved))) {
      throw accessRemoved();
    }
    return current;
  }

  /**
   * Whether the login's assertion was issued after the membership was removed, so that it is
   * Maestrano adding the user back, not a response issued before the removal and posted after
   * it (still valid for minutes, or given back by a login that failed). The IdP's clock
   * (`IssueInstant`, in whole seconds: rounded down, so toward refusing) against ours (the
   * removal's `updatedAt`), compared as they are: a re-add in the same second as the removal,
   * or within an IdP clock behind ours, is refused (403) and the user's next sign-in a moment
   * later succeeds; a tolerance of `sso.clockSkewMs` (minutes) would refuse re-adds that long.
   * No usable issue time: refused.
   */
  #issuedAfterRemoval(identity: SsoIdentity, removal: Date): boolean {
    const issuedAt = identity.issuedAt instanceof Date ? identity.issuedAt.getTime() : Number.NaN;
    return Number.isFinite(issuedAt) && issuedAt >= removal.getTime();
  }

  /**
   * Undoes what the SDK still holds for the user in a cancelled group, as the removal webhook
   * would: an active membership (a login that wrote it while the deletion ran, after the
   * deletion's last pass, or whose earlier withdrawal failed), and in virtual mode, where the
   * user exists only through this group, a user not blocked yet. Nothing held: nothing done.
   */
  async #withdrawIfHeld(tenant: Tenant, uid: string, groupId: string, userId: string): Promise<void> {
    const { storage } = this.#runtime;
    const [membership] = await storage.users.listMemberships(tenant.name, { uid, groupId });
    const virtual = tenant.sso.creationMode === 'virtual';
    const userRecord = virtual ? await storage.users.get(tenant.name, uid) : null;
    const block = virtual && userRecord !== null && userRecord.status !== 'blocked';
    if (membership?.status !== 'active' && !block) return;
    const group = await storage.groups.get(tenant.name, groupId);
    if (!group) return;
    await this.#withdraw(
      tenant,
      { id: userRecord?.userId ?? userId, tenant: tenant.name, uid },
      { id: group.companyId, tenant: tenant.name, groupId },
      { removeMembership: membership?.status === 'active', block },
    );
  }

  /**
   * The withdrawal itself: the app hears `removeMembership` (and `blockUser` in virtual mode),
   * then the SDK's state follows, the block before the membership (as in the webhooks): a
   * failure anywhere leaves something held, so the login answers 503 and the user's retry,
   * refused as cancelled, runs it again with the same idempotency keys until it completes.
   */
  async #withdraw(tenant: Tenant, user: UserHandle, company: CompanyHandle, what: { removeMembership: boolean; block: boolean }): Promise<void> {
    const { storage, logger } = this.#runtime;
    const key = `${tenant.name}:${keyPart(user.uid)}:${keyPart(company.groupId)}:withdrawn`;
    const withdrawal = 'could not withdraw the membership of a cancelled group';
    // The log's `step` names the hook that failed, as for the other hooks of a login.
    let step = withdrawal;
    try {
      const { removeMembership, blockUser } = this.#hooks;
      if (removeMembership) {
        step = 'removeMembership failed';
        await this.#call('removeMembership', tenant, `mno:remove-membership:${key}`, (ctx) => removeMembership(user, company, ctx));
        step = withdrawal;
      }
      if (what.block) {
        if (blockUser) {
          step = 'blockUser failed';
          await this.#call('blockUser', tenant, `mno:block-user:${key}`, (ctx) => blockUser(user, company, ctx));
          step = withdrawal;
        }
        await storage.users.setStatus(tenant.name, user.uid, 'blocked');
      }
      if (what.removeMembership) await storage.users.setMembershipStatus(tenant.name, user.uid, company.groupId, 'removed');
    } catch (error) {
      logger.error('maestrano: could not withdraw the membership of a login into a cancelled group; the login answers 503 and its retry withdraws it', {
        tenant: tenant.name,
        uid: user.uid,
        groupId: company.groupId,
        error: error instanceof Error ? error.message : String(error),
      });
      throw error instanceof StorageError ? error : failed(step, error, 503);
    }
  }

  /** Whether Maestrano deleted the group (service cancelled), as storage has it now. */
  async #groupCancelled(tenant: Tenant, groupId: string): Promise<boolean> {
    return (await this.#runtime.storage.groups.get(tenant.name, groupId))?.status === 'cancelled';
  }

  async #reconcileMembership(
    tenant: Tenant,
    identity: SsoIdentity,
    user: UserHandle,
    company: CompanyHandle,
    current: MembershipRecord | undefined,
    accepted: () => Promise<void>,
  ): Promise<boolean> {
    const { storage } = this.#runtime;
    const role = identity.membership.role;
    if (current && current.status === 'active' && current.role === role) {
      await accepted();
      return false;
    }
    // One key per change of the membership: it names the state the change starts from, so a
    // role switched back, or a membership Maestrano gives back after a removal, is a new
    // operation (an app that skips keys it has seen would ignore it otherwise), while a retry
    // after a failed write starts from the same state and keeps the key.
    const from = current ? `:from-${current.status}-${current.updatedAt.getTime()}` : '';
    const key = `mno:membership:${tenant.name}:${keyPart(user.uid)}:${keyPart(company.groupId)}${from}`;
    try {
      const addMembership = this.#hooks.addMembership;
      if (addMembership) await this.#call('addMembership', tenant, `${key}:${role}`, (ctx) => addMembership(user, company, role, ctx));
    } catch (error) {
      throw wrapped(error, 'addMembership failed');
    }
    const onSeatsChanged = this.#hooks.onSeatsChanged;
    if (!onSeatsChanged) {
      await accepted();
      await storage.users.upsertMembership(tenant.name, user.uid, company.groupId, role);
      return true;
    }
    // A seat change: count + report + write under the group's seats lock (shared with the
    // member removal webhook), so the reports of one group follow the writes in order and the
    // last one carries the real count. The report comes before the write, as in the removal
    // webhook: a write whose answer is lost (committed, then an error) or any failure before it
    // answers 503, and the retry either finds the membership not active yet and reports again
    // with the same key (same starting state, same count), or finds it active (the write
    // committed after this report). The other order left a committed write unreported forever.
    const seats = await withStorageLock(
      storage,
      seatsLockKey(tenant.name, company.groupId),
      {
        owner: `${this.#runtime.instanceId}:sso-seats:${randomUUID()}`,
        ttlMs: this.#options.claimTtlMs,
        waitMs: Math.min(this.#options.claimTtlMs, SEATS_LOCK_WAIT_MS),
        logger: this.#runtime.logger,
        // `onSeatsChanged` may outlast one lease (it is given up to three): renewed while it
        // runs, so no other seat change of the group counts and reports meanwhile.
        renew: true,
      },
      async (lease) => {
        // Recorded once the write is sure to follow: a login that times out on this lock
        // records no new user either.
        await accepted();
        // Read again under the lock: `current` was read before it.
        const [own] = await storage.users.listMemberships(tenant.name, { uid: user.uid, groupId: company.groupId });
        // Only a membership that becomes active changes the seats (not a role change, nor a
        // concurrent login of the same user that added it first). A removal's placeholder left
        // active between its writes is no seat (see `removedAt`).
        if (own?.status !== 'active' || removedAt(own) !== null) {
          // Counted by the store, not listed: a group may hold tens of thousands of members.
          // The count leaves placeholders out, and this user holds no seat yet.
          const seats = await storage.users.seats(tenant.name, company.groupId);
          const activeSeats = seats.active + 1;
          // The key names the group's membership state the count comes from (its latest change):
          // a retry with nothing changed reports under the same key, but one after other members
          // joined or left (the same count by chance) is a new report, not a duplicate to skip.
          const state = Math.max(0, seats.latestChange?.getTime() ?? 0);
          try {
            await this.#call('onSeatsChanged', tenant, `${key}:seat:${activeSeats}:${state}`, (ctx) => onSeatsChanged(company, { activeSeats, added: [user.uid], removed: [] }, ctx));
          } catch (error) {
            this.#runtime.logger.error('maestrano: onSeatsChanged failed', { tenant: tenant.name, groupId: company.groupId, error });
          }
        }
        // The lock may have passed to another seat change (renewals refused or unconfirmed): its
        // count did not include this membership, so it is not written now (503; the retry reports again).
        if (!lease.held()) throw failed(`lost the seats lock of group ${company.groupId} before the membership write`, undefined, 503);
        await storage.users.upsertMembership(tenant.name, user.uid, company.groupId, role);
      },
    );
    if (!seats.acquired) throw failed(`timed out waiting for the seats lock of group ${company.groupId}`, undefined, 503);
    return true;
  }
}
