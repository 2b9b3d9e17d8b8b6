import { createHash, timingSafeEqual } from 'node:crypto';
import { generateSigningIdentity } from './certs.js';
import { CONNEC_COLLECTIONS } from './connec/collections.js';
import { type ChangeSource, ConnecError, createRecord, matchingRecord, renderRecord, updateRecord } from './connec/records.js';
import type { FaultInjector } from './faults.js';
import type { IdpSessions } from './idp.js';
import { Notifier } from './notifier.js';
import type { Store } from './store.js';
import type { ConnecRecord, Delivery, Group, GroupRole, JsonObject, Marketplace, Membership, OtherApp, SsoSession, SyncControlAction, User } from './types.js';
import { newId, newSecret, randomSuffix } from './util.js';

export interface ResolvedOptions {
  appUrl: string;
  notifyDelayMs: number;
  retryBaseMs: number;
  maxDeliveryAttempts: number;
  deliveryTimeoutMs: number;
}

/**
 * Constant-time string comparison, as the SDK's webhook check does: both sides are hashed
 * (SHA-256) first, so neither the content nor the length of a secret leaks through timing.
 */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a, 'utf8').digest(), createHash('sha256').update(b, 'utf8').digest());
}

/** An id/secret pair against the expected one; both halves are always compared (constant time). */
export function credentialsMatch(id: string, secret: string, expectedId: string, expectedSecret: string): boolean {
  const idMatches = safeEqual(id, expectedId);
  const secretMatches = safeEqual(secret, expectedSecret);
  return idMatches && secretMatches;
}

export const GROUP_ROLES: readonly GroupRole[] = ['Member', 'Power User', 'Admin', 'Super Admin'];

export interface GroupInput {
  id?: string;
  name?: string;
  email?: string;
  marketplace?: string;
  orgUid?: string;
  hasCreditCard?: boolean;
  freeTrialEndAt?: string;
  currency?: string;
  country?: string;
  city?: string;
  timezone?: string;
  mainAccounting?: string | null;
  metadata?: Record<string, unknown>;
  resellerId?: string | null;
}

export interface UserInput {
  id?: string;
  name?: string;
  surname?: string;
  email?: string;
  companyName?: string;
  country?: string;
  password?: string;
  memberships?: Array<{ groupId: string; role?: GroupRole }>;
}

export const SYNC_CONTROL_ACTIONS: readonly SyncControlAction[] = ['start', 'status', 'toggle', 'update_metadata'];

/** What a connector control call sent to the app and what the app answered. */
export interface SyncControlResult {
  action: SyncControlAction;
  groupId: string;
  method: 'POST' | 'GET' | 'PUT';
  /** The full URL called: `app.host` + the advertised path. */
  url: string;
  /** The JSON body sent (null for status, a GET). */
  requestBody: JsonObject | null;
  /** The app's HTTP status; null when it did not answer (see `error`). */
  status: number | null;
  /** The app's answer parsed as JSON; null when empty or not JSON (see `text`). */
  body: unknown;
  /** The app's answer as text. */
  text: string;
  /** `HTTP <status>` for a non-2xx answer, the network error, or null. */
  error: string | null;
  /** The entry of the delivery log (`kind: 'sync.<action>'`). */
  delivery: Delivery;
}

export class PlatformError extends Error {
  readonly status: number;
  readonly field: string;
  constructor(status: number, field: string, message: string) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

/** Ids given to createGroup/createUser: they end up in URL paths, so URL-safe characters only. */
const ID_PATTERN = /^[A-Za-z0-9_-]+$/;

function checkId(id: string): void {
  if (!ID_PATTERN.test(id)) throw new PlatformError(400, 'id', `Invalid id '${id}': use letters, digits, '_' and '-' only`);
}

/** Domain operations shared by the protocol APIs, the admin API and the UI. */
export class Platform {
  readonly store: Store;
  readonly notifier: Notifier;
  readonly options: ResolvedOptions;
  faults: FaultInjector | null = null;
  /** The IdP's browser sessions (ended by the admin reset). */
  idpSessions: IdpSessions | null = null;
  /** Public base URL of the sandbox (set once listening). */
  url = '';

  constructor(store: Store, options: ResolvedOptions) {
    this.store = store;
    this.options = options;
    this.notifier = new Notifier({
      notifyDelayMs: options.notifyDelayMs,
      retryBaseMs: options.retryBaseMs,
      maxAttempts: options.maxDeliveryAttempts,
      timeoutMs: options.deliveryTimeoutMs,
      credentials: (name) => {
        const m = this.store.marketplaces.get(name);
        return m ? { apiId: m.apiId, apiKey: m.apiKey } : undefined;
      },
    });
  }

  ensureEnvironment(env?: { apiKey: string; apiSecret: string }): void {
    if (env) this.store.setEnvironment(env);
    else if (!this.store.environment) this.store.setEnvironment({ apiKey: `env-${randomSuffix(12)}`, apiSecret: newSecret(24) });
  }

  /** Creates missing marketplaces, each with its own app credentials and IdP key pair. */
  ensureMarketplaces(names: string[]): void {
    for (const name of names) {
      if (this.store.marketplaces.has(name)) continue;
      if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new PlatformError(400, 'marketplace', `Invalid marketplace name '${name}'`);
      const identity = generateSigningIdentity(`idp.${name}.sandbox.local`);
      const m: Marketplace = {
        name,
        apiId: `app-${randomSuffix(10)}`,
        apiKey: newSecret(24),
        privateKeyPem: identity.privateKeyPem,
        certificatePem: identity.certificatePem,
        fingerprint: identity.fingerprint,
        externalIds: true,
        createdAt: new Date().toISOString(),
      };
      this.store.putMarketplace(m);
    }
  }

  get defaultMarketplace(): Marketplace {
    const first = this.store.marketplaces.values().next().value;
    if (!first) throw new PlatformError(500, 'marketplace', 'No marketplace configured');
    return first;
  }

  /** Compares in constant time against every marketplace (no early exit on a match). */
  marketplaceByCredentials(apiId: string, apiKey: string): Marketplace | undefined {
    let found: Marketplace | undefined;
    for (const m of this.store.marketplaces.values()) {
      if (credentialsMatch(apiId, apiKey, m.apiId, m.apiKey) && !found) found = m;
    }
    return found;
  }

  otherAppByCredentials(apiId: string, apiKey: string): OtherApp | undefined {
    const app = this.store.otherApps.get(apiId);
    return app && safeEqual(apiKey, app.apiKey) ? app : undefined;
  }

  /** Registers another application with Connec! access to the given groups. */
  createOtherApp(groupIds: string[], name = 'Other app'): OtherApp {
    for (const id of groupIds) this.requireGroup(id);
    const app: OtherApp = { name, apiId: `app-${randomSuffix(10)}`, apiKey: newSecret(24), groupIds: [...groupIds], createdAt: new Date().toISOString() };
    this.store.putOtherApp(app);
    return app;
  }

  marketplaceByApiId(apiId: string): Marketplace | undefined {
    for (const m of this.store.marketplaces.values()) if (m.apiId === apiId) return m;
    return undefined;
  }

  appPaths(tenant: string) {
    return {
      initPath: `/maestrano/auth/saml/init/${tenant}`,
      consumePath: `/maestrano/auth/saml/consume/${tenant}`,
      groupPath: `/maestrano/account/groups/:id/${tenant}`,
      groupUserPath: `/maestrano/account/groups/:group_id/users/:id/${tenant}`,
      notificationPath: `/maestrano/connec/notifications/${tenant}`,
      syncStartPath: `/maestrano/${tenant}/synchronizations`,
      syncTogglePath: `/maestrano/${tenant}/synchronizations/toggle_sync`,
      syncStatusPath: `/maestrano/${tenant}/synchronizations/:cld-uid`,
    };
  }

  /**
   * Method and path of a connector control call (PROTOCOL §5.4), from the marketplace's
   * advertised `app.synchronization_*_path`. The status path's parameter (`:cld-uid`) is the
   * group id; `update_metadata` sits beside the toggle path when it ends in `toggle_sync`
   * (else under the start path), as the SDK serves it.
   */
  syncControlRequest(tenant: string, action: SyncControlAction, groupId: string): { method: 'POST' | 'GET' | 'PUT'; path: string } {
    const paths = this.appPaths(tenant);
    switch (action) {
      case 'start':
        return { method: 'POST', path: paths.syncStartPath };
      case 'status':
        return { method: 'GET', path: paths.syncStatusPath.replace(/:[^/]+/, encodeURIComponent(groupId)) };
      case 'toggle':
        return { method: 'PUT', path: paths.syncTogglePath };
      case 'update_metadata':
        return {
          method: 'PUT',
          path: /\/toggle_sync$/.test(paths.syncTogglePath) ? paths.syncTogglePath.replace(/toggle_sync$/, 'update_metadata') : `${paths.syncStartPath}/update_metadata`,
        };
    }
  }

  /**
   * Makes the platform call the app's connector control endpoint for a group (PROTOCOL §5.4)
   * and waits for the answer: `POST` start (`{group_id, opts}`, `opts.full_sync` with
   * `fullSync`), `GET` status, `PUT` toggle_sync and update_metadata (`{group_id}`), JSON
   * bodies, Basic `api.id:api.key` of the group's marketplace, at `{appUrl}{path}`. Sent once
   * (no retry) and logged as a `sync.<action>` delivery. Unknown group: PlatformError 404,
   * nothing sent. A terminated group is still sent, so the app's answer for it can be seen.
   */
  async syncControl(groupId: string, action: SyncControlAction, options: { fullSync?: boolean } = {}): Promise<SyncControlResult> {
    const group = this.requireGroup(groupId);
    if (!SYNC_CONTROL_ACTIONS.includes(action)) throw new PlatformError(400, 'action', `action must be one of ${SYNC_CONTROL_ACTIONS.join(', ')}`);
    if (options.fullSync !== undefined && action !== 'start') throw new PlatformError(400, 'fullSync', 'fullSync only applies to the start action');
    const { method, path } = this.syncControlRequest(group.marketplace, action, group.id);
    const url = `${this.options.appUrl.replace(/\/$/, '')}${path}`;
    let requestBody: JsonObject | null;
    if (action === 'status') requestBody = null;
    else if (action === 'start') requestBody = { group_id: group.id, opts: options.fullSync ? { full_sync: true } : {} };
    else requestBody = { group_id: group.id };
    const sent = await this.notifier.call({ kind: `sync.${action}`, marketplace: group.marketplace, method, url, body: requestBody === null ? null : JSON.stringify(requestBody) });
    let body: unknown = null;
    if (sent.text.trim() !== '') {
      try {
        body = JSON.parse(sent.text);
      } catch {
        body = null;
      }
    }
    return { action, groupId: group.id, method, url, requestBody, status: sent.status, body, text: sent.text, error: sent.error, delivery: sent.delivery };
  }

  /** One element of the dev-platform `marketplaces` document (PROTOCOL §1.4). */
  marketplaceDocument(m: Marketplace): JsonObject {
    const paths = this.appPaths(m.name);
    return {
      nid: `sandbox-${m.name}`,
      marketplace: m.name,
      environment: 'sandbox',
      app: {
        host: this.options.appUrl,
        synchronization_start_path: paths.syncStartPath,
        synchronization_toggle_path: paths.syncTogglePath,
        synchronization_status_path: paths.syncStatusPath,
      },
      api: { id: m.apiId, key: m.apiKey, host: this.url, base: '/api/v1/' },
      sso: {
        idm: '',
        init_path: paths.initPath,
        consume_path: paths.consumePath,
        idp: this.url,
        x509_fingerprint: m.fingerprint,
        x509_certificate: m.certificatePem,
      },
      connec: { host: this.url, base_path: '/api/v2', timeout: 300 },
      webhooks: {
        account: { group_path: paths.groupPath, group_user_path: paths.groupUserPath },
        connec: { external_ids: m.externalIds, initialization_path: null, notification_path: paths.notificationPath },
      },
    };
  }

  createGroup(input: GroupInput): Group {
    const marketplace = input.marketplace ?? this.defaultMarketplace.name;
    if (!this.store.marketplaces.has(marketplace)) throw new PlatformError(400, 'marketplace', `Unknown marketplace '${marketplace}'`);
    if (input.id !== undefined) checkId(input.id);
    const id = input.id ?? newId('cld');
    if (this.store.groups.has(id)) throw new PlatformError(409, 'id', `Group ${id} already exists`);
    const now = new Date().toISOString();
    const group: Group = {
      id,
      name: input.name ?? `Group ${id}`,
      email: input.email ?? `admin@${id}.example.com`,
      marketplace,
      orgUid: input.orgUid ?? newId('org'),
      hasCreditCard: input.hasCreditCard ?? false,
      freeTrialEndAt: input.freeTrialEndAt ?? new Date(Date.now() + 30 * 86400_000).toISOString(),
      currency: input.currency ?? 'AUD',
      country: input.country ?? 'AU',
      city: input.city ?? 'Sydney',
      timezone: input.timezone ?? 'Australia/Sydney',
      status: 'running',
      mainAccounting: input.mainAccounting ?? null,
      metadata: input.metadata ?? {},
      resellerId: input.resellerId ?? null,
      createdAt: now,
      updatedAt: now,
    };
    this.store.putGroup(group);
    return group;
  }

  createUser(input: UserInput): User {
    if (input.id !== undefined) checkId(input.id);
    const id = input.id ?? newId('usr');
    if (this.store.users.has(id)) throw new PlatformError(409, 'id', `User ${id} already exists`);
    for (const m of input.memberships ?? []) {
      if (!this.store.groups.has(m.groupId)) throw new PlatformError(400, 'group_id', `Unknown group ${m.groupId}`);
      if (m.role !== undefined && !GROUP_ROLES.includes(m.role)) throw new PlatformError(400, 'role', `Unknown role ${m.role}`);
    }
    const now = new Date().toISOString();
    const user: User = {
      id,
      name: input.name ?? 'Jane',
      surname: input.surname ?? 'Doe',
      email: input.email ?? `${id}@example.com`,
      companyName: input.companyName ?? 'Sandbox Pty Ltd',
      country: input.country ?? 'AU',
      password: input.password ?? 'password',
      createdAt: now,
      updatedAt: now,
    };
    this.store.putUser(user);
    for (const m of input.memberships ?? []) this.store.putMembership({ groupId: m.groupId, userId: id, role: m.role ?? 'Member' });
    return user;
  }

  addMember(groupId: string, userId: string, role: GroupRole = 'Member'): Membership {
    if (!this.store.groups.has(groupId)) throw new PlatformError(404, 'group_id', `Unknown group ${groupId}`);
    if (!this.store.users.has(userId)) throw new PlatformError(404, 'user_id', `Unknown user ${userId}`);
    if (!GROUP_ROLES.includes(role)) throw new PlatformError(400, 'role', `Unknown role ${role}`);
    const m: Membership = { groupId, userId, role };
    this.store.putMembership(m);
    return m;
  }

  membershipsOf(userId: string): Membership[] {
    return [...this.store.memberships.values()].filter((m) => m.userId === userId);
  }

  membersOf(groupId: string): Membership[] {
    return [...this.store.memberships.values()].filter((m) => m.groupId === groupId);
  }

  #webhookUrl(template: string, params: Record<string, string>): string {
    let path = template;
    for (const [k, v] of Object.entries(params)) path = path.replace(`:${k}`, encodeURIComponent(v));
    return `${this.options.appUrl.replace(/\/$/, '')}${path}`;
  }

  /** Removes a member and sends `DELETE group_user_path` to the app (PROTOCOL §5.2). */
  removeMember(groupId: string, userId: string, sendWebhook = true) {
    const group = this.store.groups.get(groupId);
    if (!group) throw new PlatformError(404, 'group_id', `Unknown group ${groupId}`);
    if (!this.store.removeMembership(groupId, userId)) throw new PlatformError(404, 'user_id', `User ${userId} is not a member of ${groupId}`);
    return sendWebhook ? this.sendGroupUserDeleted(groupId, userId) : null;
  }

  /** Sends `DELETE group_user_path` to the app without changing any state. */
  sendGroupUserDeleted(groupId: string, userId: string) {
    const group = this.requireGroup(groupId);
    const url = this.#webhookUrl(this.appPaths(group.marketplace).groupUserPath, { group_id: groupId, id: userId });
    return this.notifier.send({ kind: 'account.group_user.deleted', marketplace: group.marketplace, method: 'DELETE', url, body: null });
  }

  /** Sends `DELETE group_path` to the app without changing any state. */
  sendGroupDeleted(groupId: string) {
    const group = this.requireGroup(groupId);
    const url = this.#webhookUrl(this.appPaths(group.marketplace).groupPath, { id: groupId });
    return this.notifier.send({ kind: 'account.group.deleted', marketplace: group.marketplace, method: 'DELETE', url, body: null });
  }

  /** Cancels the group (status terminated) and sends `DELETE group_path` to the app (PROTOCOL §5.1). */
  cancelGroup(groupId: string, sendWebhook = true) {
    const group = this.store.groups.get(groupId);
    if (!group) throw new PlatformError(404, 'group_id', `Unknown group ${groupId}`);
    group.status = 'terminated';
    group.updatedAt = new Date().toISOString();
    this.store.putGroup(group);
    return sendWebhook ? this.sendGroupDeleted(groupId) : null;
  }

  createSession(userId: string): SsoSession {
    const s: SsoSession = { token: newSecret(20), userId, valid: true, createdAt: new Date().toISOString() };
    this.store.putSession(s);
    return s;
  }

  invalidateSessions(userId: string): number {
    let n = 0;
    for (const s of this.store.sessions.values()) {
      if (s.userId === userId && s.valid) {
        s.valid = false;
        this.store.putSession(s);
        n++;
      }
    }
    return n;
  }

  requireGroup(groupId: string): Group {
    const group = this.store.groups.get(groupId);
    if (!group) throw new PlatformError(404, 'group_id', `Unknown group ${groupId}`);
    return group;
  }

  /** Notifies the group's app of a change unless the app itself made it (PROTOCOL §6.12). */
  recordChanged(group: Group, record: ConnecRecord, source: ChangeSource): void {
    if (source === 'app') return;
    const m = this.store.marketplaces.get(group.marketplace);
    if (!m) return;
    const url = `${this.options.appUrl.replace(/\/$/, '')}${this.appPaths(m.name).notificationPath}`;
    this.notifier.queueRecord(m.name, url, record.collection, record.id, renderRecord(this.store, group, record, m.externalIds));
  }

  /**
   * A Connec! POST: merged into the record `opts.matching_fields` match (`created: false`, the
   * API answers 200), else created (201).
   */
  connecCreateOrMerge(groupId: string, collection: string, payload: JsonObject, source: ChangeSource): { record: ConnecRecord; created: boolean } {
    const group = this.requireGroup(groupId);
    if (!CONNEC_COLLECTIONS.includes(collection)) throw new ConnecError(400, 'unknown-resource', 'Unknown Resource', `Unknown resource ${collection}`);
    const match = matchingRecord({ store: this.store, group, collection, source }, payload);
    if (!match) return { record: this.connecCreate(groupId, collection, payload, source), created: true };
    return { record: this.connecUpdate(groupId, collection, match.id, payload, source), created: false };
  }

  connecCreate(groupId: string, collection: string, payload: JsonObject, source: ChangeSource): ConnecRecord {
    const group = this.requireGroup(groupId);
    if (!CONNEC_COLLECTIONS.includes(collection)) throw new ConnecError(400, 'unknown-resource', 'Unknown Resource', `Unknown resource ${collection}`);
    const record = createRecord({ store: this.store, group, collection, source }, payload);
    this.recordChanged(group, record, source);
    return record;
  }

  connecUpdate(groupId: string, collection: string, id: string, payload: JsonObject, source: ChangeSource): ConnecRecord {
    const group = this.requireGroup(groupId);
    const record = this.store.records.get(id);
    if (!record || record.groupId !== groupId || record.collection !== collection) {
      throw new ConnecError(404, 'resource-not-found', 'Resource not found', 'Resource not found');
    }
    const updated = updateRecord({ store: this.store, group, collection, source }, record, payload);
    this.recordChanged(group, updated, source);
    return updated;
  }

  /** The singular `company` resource, created on first access. */
  company(groupId: string): ConnecRecord {
    const group = this.requireGroup(groupId);
    const existing = this.store.listRecords(groupId, 'company')[0];
    if (existing) return existing;
    return createRecord({ store: this.store, group, collection: 'company', source: 'admin' }, { name: group.name, currency: group.currency, timezone: group.timezone });
  }
}
