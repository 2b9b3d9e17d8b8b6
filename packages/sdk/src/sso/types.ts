import type { Logger, Tenant } from '../core/types.js';

/** Identity mode (PROTOCOL §3.5): which uid/email pair keys the app's user. */
export type CreationMode = 'real' | 'virtual';

/** The user of a SAML assertion, with every user attribute of PROTOCOL §3.4. */
export interface SsoUser {
  /**
   * The key the app's user is stored under for this tenant's identity mode: `uid` in
   * `real` mode, `virtualUid` (`usr-x.cld-y`) in `virtual` mode.
   */
  key: string;
  /** The email for this identity mode: `email` (real) or `virtualEmail` (virtual). */
  appEmail: string;
  /** Real, global Maestrano user id (`usr-…`). Also the NameID. */
  uid: string;
  /** `{uid}.{groupUid}`. */
  virtualUid: string;
  /** The user's real email. */
  email: string;
  /** Per-group relay address; do not use it as the contact address. */
  virtualEmail: string;
  /** `mno_uid` (legacy duplicate of the NameID). */
  mnoUid: string;
  firstName: string;
  lastName: string;
  /** ISO 3166-1 alpha-2, or null when absent/empty. */
  country: string | null;
  /** Company name typed at sign-up (unrelated to the group name). */
  companyName: string | null;
  /** Legacy `app_owner`. */
  appOwner: boolean;
  /** Legacy `organizations` map (`{"org-876": {"name","role"}}`), `{}` when absent or not JSON. */
  organizations: Record<string, { name?: string; role?: string }>;
  /** Present only when the user logs in as a reseller. */
  reseller: { id: string; name: string | null; country: string | null } | null;
}

/** The group (customer account) of a SAML assertion, with every group attribute of PROTOCOL §3.4. */
export interface SsoGroup {
  /** `cld-…`. */
  uid: string;
  name: string;
  /** End of Maestrano's free trial, or null. */
  endFreeTrial: Date | null;
  hasCreditCard: boolean;
  email: string | null;
  /** ISO 4217. */
  currency: string | null;
  /** IANA zone. */
  timezone: string | null;
  country: string | null;
  city: string | null;
  /** Maestrano organization (`org-…`): Connec!'s channel id and id realm. */
  orgUid: string | null;
  resellerId: string | null;
}

/** The user's role in the group (`Member`, `Power User`, `Admin`, `Super Admin`, `Guest`, …). */
export interface SsoMembership {
  groupUid: string;
  /** The identity-mode key (`SsoUser.key`). */
  userKey: string;
  role: string;
}

/**
 * What the app keeps in its own (server-side or signed) session after a login, and passes
 * back to `mno.sso.checkSession`. Plain JSON.
 */
export interface SsoSession {
  tenant: string;
  /** Real Maestrano uid (used for the session check and the logout URL). */
  uid: string;
  groupUid: string;
  /** `mno_session`: opaque IdP session token. Treat as a secret (never log it). */
  session: string;
  /** `mno_session_recheck`: ISO time after which the session must be re-checked remotely. */
  recheck: string;
}

// ---------------------------------------------------------------------------------------
// Provisioning hooks (the app's own records; the SDK runs the rules)

/**
 * Context of every provisioning hook call.
 *
 * `idempotencyKey` is stable for the logical operation (`mno:company:<tenant>:<groupId>`,
 * `mno:user:<tenant>:<userKey>`, `mno:membership:<tenant>:<userKey>:<groupId>…:<role>`, …). A
 * hook can be called again with the same key when an earlier attempt's outcome was not recorded
 * (a crash, a storage failure, an expired claim): upsert on it so a repeat never duplicates.
 * Each change of a membership is its own operation: a membership given back after a removal,
 * or a role switched back, gets a new key (it names the recorded state the change starts from).
 */
export interface ProvisioningContext {
  tenant: Tenant;
  logger: Logger;
  /**
   * Aborted when the provisioning claim expires (`sso.provisioningClaimTtlMs`, 30 s by default):
   * another login may then take over and call the hook again with the same key. The SDK stops
   * waiting for the hook three claim TTLs after the call and answers the login 503.
   */
  signal: AbortSignal;
  idempotencyKey: string;
}

/** What `createCompany` / `createUser` / `findUserByEmail` return: the app's own id. */
export interface AppRecordRef {
  id: string;
}

/** An app company as the SDK knows it. */
export interface CompanyHandle {
  /** The app's company id. */
  id: string;
  tenant: string;
  /** Maestrano group uid (`cld-…`). */
  groupId: string;
}

/** An app user as the SDK knows it. */
export interface UserHandle {
  /** The app's user id. */
  id: string;
  tenant: string;
  /** The identity-mode key the user is stored under (`usr-…`, or `usr-….cld-…` in virtual mode). */
  uid: string;
}

/** The change reported to `onSeatsChanged`. */
export interface SeatsChange {
  /** Active memberships of the group after the change. */
  activeSeats: number;
  /** Identity-mode keys whose membership became active. */
  added: string[];
  /** Identity-mode keys whose membership was removed. */
  removed: string[];
}

export interface ProvisioningHooks {
  /**
   * Creates the app's company for a new group (checklist 1.2.1). Called once per group
   * under a storage claim; a throw releases the claim (nothing is recorded) and the next
   * login tries again with the same idempotency key.
   */
  createCompany(group: SsoGroup, ctx: ProvisioningContext): Promise<AppRecordRef> | AppRecordRef;
  /** Creates the app's user inside `company` (checklist 1.2.2, 1.2.3). Same claim rules as `createCompany`. */
  createUser(user: SsoUser, company: CompanyHandle, ctx: ProvisioningContext): Promise<AppRecordRef> | AppRecordRef;
  /**
   * Optional account linking (checklist 1.4.1): an existing app user with this email gets
   * the Maestrano uid linked to it. Provide it only when emails are unique in the app.
   * Called with `SsoUser.appEmail`, as Maestrano asserted it (in `virtual` mode, only when the
   * response carries the per-group `virtual_email`: the real email would join the person's
   * groups into one app user). Look only among the app users of
   * `ctx.tenant`: another marketplace's IdP must not reach them by asserting their email. Compare
   * case-insensitively: `Alice@DoeCorp.com` is the mailbox of `alice@doecorp.com`. Keep the
   * stored emails current (update them from `LoginArgs.user.profile` in `onLogin`): a user who
   * changed their email at Maestrano and still has the old one here would be linked to whoever
   * registers that address next.
   */
  findUserByEmail?(email: string, ctx: ProvisioningContext): Promise<AppRecordRef | null> | AppRecordRef | null;
  /**
   * Called when the user's membership of the company is new or its role changed (checked
   * on every login, and for a membership that was removed and is active again). A throw
   * fails the login and the membership is not recorded, so the next login calls it again.
   */
  addMembership?(user: UserHandle, company: CompanyHandle, role: string, ctx: ProvisioningContext): Promise<void> | void;
  /**
   * Group deleted on Maestrano (service cancellation, checklist 2.2.1). Invoked by the
   * account webhook once the group is known here. For a group whose first login created the
   * company but never completed, it can be called more than once: by each delivery of the
   * deletion and by each login refused because of it. Make it idempotent by
   * `ctx.idempotencyKey` (the same for every such call of one group).
   */
  cancelCompany?(company: CompanyHandle, ctx: ProvisioningContext): Promise<void> | void;
  /**
   * A member was removed from the group (checklist 2.2.2). Invoked by the account webhook
   * once per removal of a (user, group) membership, also when the user is still in other
   * groups: the app ends the user's access to that company (membership, sessions). Also called
   * by an SSO login whose group was cancelled while it ran, to withdraw what it granted
   * (`blockUser` follows in virtual mode). Make it idempotent and let it accept a membership
   * the app does not have: a removal of a known user from a known company is heard even when
   * the SDK recorded no membership there (a login whose membership write failed after
   * `addMembership` accepted it), with an idempotency key ending in `:unrecorded`; and so is
   * the removal of a user a first login had `createUser` make (or `findUserByEmail` link) and
   * then failed before the SDK recorded that user (key ending in `:unrecorded`, or
   * `:unrecorded-<ms>` when Maestrano had removed the user from that group before), or a
   * login adding a known user back after a removal had `addMembership` run and then failed
   * before the SDK wrote the membership (key ending in `:unrecorded-<ms>`).
   */
  removeMembership?(user: UserHandle, company: CompanyHandle, ctx: ProvisioningContext): Promise<void> | void;
  /**
   * The removed member has no active membership in a live group left (PROTOCOL §5.2): the
   * app blocks the user. Make it accept a user already blocked: where the SDK recorded no
   * membership of the removal (see `removeMembership`), it is called even when the SDK holds
   * the user blocked, since the failed login's `addMembership` may have made it active again. Called after `removeMembership`; `company` is the company of the
   * removal that left the user without any. In `virtual` identity mode, where users exist
   * per group, also called for each active user of a deleted group.
   */
  blockUser?(user: UserHandle, company: CompanyHandle, ctx: ProvisioningContext): Promise<void> | void;
  /** The number of active members of a company changed (per-seat billing). */
  onSeatsChanged?(company: CompanyHandle, change: SeatsChange, ctx: ProvisioningContext): Promise<void> | void;
}

/** How the login came about (for the app's analytics or welcome flows). */
export interface LoginOutcome {
  companyCreated: boolean;
  userCreated: boolean;
  /** The uid was linked to an existing app user by email (1.4.1). */
  linkedByEmail: boolean;
  membershipChanged: boolean;
}

/** Arguments of `onLogin`. */
export interface LoginArgs {
  /**
   * The app's user, plus the assertion's user attributes: the email and names as Maestrano has
   * them now, which may differ from what `createUser` stored (users change them at Maestrano;
   * the uid stays). The SDK keeps no copy of the app's, so the app compares and updates its own.
   */
  user: UserHandle & { profile: SsoUser };
  company: CompanyHandle;
  group: SsoGroup;
  membership: SsoMembership;
  /** Keep it in the app's server-side (or signed) session for `checkSession`. */
  session: SsoSession;
  tenant: Tenant;
  /** The ACS request; its form body (`SAMLResponse`, `RelayState`) can be read again. */
  request: Request;
  /**
   * The `RelayState` the IdP posted with the response, or null, as posted. It is not signed:
   * anyone can post any value. To redirect to it, use `returnTo`.
   */
  relayState: string | null;
  /**
   * `relayState` as a path of the app's own origin (`app.host`), normalised, or null when it is
   * none (another host, a scheme, whitespace or control characters, a backslash): safe to
   * redirect to. See `safeReturnPath`.
   */
  returnTo: string | null;
  outcome: LoginOutcome;
}

/**
 * Sets the app's own session and returns the response (usually a redirect). It runs while the
 * SDK holds the user's lock, which a member removal waits for (up to 10 s, then 503 and a
 * retry by Maestrano): keep it short.
 */
export type OnLogin = (args: LoginArgs) => Promise<Response> | Response;
