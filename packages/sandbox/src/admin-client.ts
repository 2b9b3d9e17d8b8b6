import type { FaultInput } from './faults.js';
import type { GroupInput, SyncControlResult, UserInput } from './platform.js';
import type { SeedSummary } from './seed.js';
import type { Delivery, FaultRule, Group, GroupRole, JsonObject, Membership, OtherApp, SandboxRecord, SyncControlAction, User } from './types.js';

export interface AdminState {
  url: string;
  appUrl: string;
  persistent: boolean;
  marketplaces: Array<{ name: string; apiId: string; apiKey: string; fingerprint: string }>;
  counts: { groups: number; users: number; records: number; bills: number; recurringBills: number; deliveries: number };
}

export interface GroupCredentials {
  groupId: string;
  orgUid: string;
  marketplace: string;
  apiId: string;
  apiKey: string;
}

export interface SsoLoginResult {
  /** Base64 SAMLResponse, as the auto-post form sends it. */
  samlResponse: string;
  /** The decoded XML (signed assertion). */
  xml: string;
  /** The ACS URL the form posts to. */
  acsUrl: string;
  relayState: string | null;
  userId: string;
  groupId: string;
  /** The `mno_session` token carried in the assertion. */
  sessionToken: string;
  assertionId: string;
}

export interface SsoLoginInput {
  /** The IdP URL the app redirected to (with `SAMLRequest`, optional `RelayState` and `group_id`). */
  authnRequestUrl?: string;
  /** Or only the `SAMLRequest` value. */
  samlRequest?: string;
  relayState?: string;
  userId: string;
  groupId?: string;
}

/** A one-off bill as the sandbox's Account API renders it (`GET /api/v1/account/bills`, snake_case). */
export type AdminBill = {
  object: 'account_bill';
  id: string;
  group_id: string;
  price_cents: number;
  description: string;
  currency: string;
  units: number;
  period_started_at: string | null;
  period_ended_at: string | null;
  third_party: boolean;
  status: 'submitted' | 'invoiced' | 'cancelled';
  created_at: string;
  updated_at: string;
};

/** A recurring bill as the sandbox's Account API renders it (`GET /api/v1/account/recurring_bills`, snake_case). */
export type AdminRecurringBill = {
  object: 'account_recurring_bill';
  id: string;
  group_id: string;
  price_cents: number;
  description: string;
  currency: string;
  period: 'day' | 'week' | 'semimonth' | 'month' | 'year';
  frequency: number;
  cycles: number | null;
  /** When the first cycle is charged (ISO 8601): after a free trial, the trial's end. */
  start_date: string;
  initial_cents: number;
  status: 'submitted' | 'active' | 'expired' | 'cancelled';
  last_execution_at: string | null;
  next_execution_at: string | null;
  remaining_cycles: number | null;
  created_at: string;
  updated_at: string;
};

export class SandboxAdminError extends Error {
  readonly status: number;
  readonly field: string | null;
  readonly body: unknown;
  constructor(status: number, message: string, field: string | null, body: unknown) {
    super(message);
    this.name = 'SandboxAdminError';
    this.status = status;
    this.field = field;
    this.body = body;
  }
}

/** Typed client of the sandbox admin HTTP API (`/__admin`). */
export class SandboxAdmin {
  readonly url: string;

  constructor(sandboxUrl: string) {
    this.url = sandboxUrl.replace(/\/$/, '');
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.url}/__admin${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      throw new SandboxAdminError(res.status, `Admin API answered non-JSON: ${text.slice(0, 200)}`, null, text);
    }
    if (!res.ok) {
      const err = typeof parsed === 'object' && parsed !== null && 'error' in parsed ? parsed.error : null;
      const message = typeof err === 'object' && err !== null && 'message' in err ? String(err.message) : `Admin API error ${res.status}`;
      const field = typeof err === 'object' && err !== null && 'field' in err ? String(err.field) : null;
      throw new SandboxAdminError(res.status, message, field, parsed);
    }
    return parsed as T;
  }

  state(): Promise<AdminState> {
    return this.#call('GET', '/state');
  }
  /** Deletes all groups, users, bills, records and sessions (keeps marketplaces and keys); optionally re-seeds. */
  reset(options: { seed?: number } = {}): Promise<{ reset: true; seed: SeedSummary | null }> {
    return this.#call('POST', '/reset', options);
  }
  seed(options: { records: number; random?: number; groups?: number }): Promise<SeedSummary> {
    return this.#call('POST', '/seed', options);
  }
  /** The dev-platform documents of every marketplace (no auth needed here). */
  marketplaces(): Promise<JsonObject[]> {
    return this.#call('GET', '/marketplaces');
  }
  listGroups(): Promise<Group[]> {
    return this.#call('GET', '/groups');
  }
  getGroup(id: string): Promise<Group & { members: Membership[] }> {
    return this.#call('GET', `/groups/${encodeURIComponent(id)}`);
  }
  createGroup(input: GroupInput = {}): Promise<Group> {
    return this.#call('POST', '/groups', input);
  }
  groupCredentials(id: string): Promise<GroupCredentials> {
    return this.#call('GET', `/groups/${encodeURIComponent(id)}/credentials`);
  }
  /** Credentials of another application with Connec! access to these groups; its changes are notified to the group's app. */
  createOtherApp(input: { groupIds: string[]; name?: string }): Promise<OtherApp> {
    return this.#call('POST', '/apps', input);
  }
  listOtherApps(): Promise<OtherApp[]> {
    return this.#call('GET', '/apps');
  }
  listUsers(): Promise<Array<User & { memberships: Membership[] }>> {
    return this.#call('GET', '/users');
  }
  getUser(id: string): Promise<User & { memberships: Membership[] }> {
    return this.#call('GET', `/users/${encodeURIComponent(id)}`);
  }
  createUser(input: UserInput = {}): Promise<User & { memberships: Membership[] }> {
    return this.#call('POST', '/users', input);
  }
  addMember(groupId: string, userId: string, role: GroupRole = 'Member'): Promise<Membership> {
    return this.#call('POST', `/groups/${encodeURIComponent(groupId)}/users`, { userId, role });
  }
  /** Removes the membership and (unless `webhook: false`) sends DELETE group_user_path to the app. */
  removeMember(groupId: string, userId: string, options: { webhook?: boolean } = {}): Promise<{ removed: true; delivery: Delivery | null }> {
    const q = options.webhook === false ? '?webhook=false' : '';
    return this.#call('DELETE', `/groups/${encodeURIComponent(groupId)}/users/${encodeURIComponent(userId)}${q}`);
  }
  /** Terminates the group and (unless `webhook: false`) sends DELETE group_path to the app. */
  cancelGroup(groupId: string, options: { webhook?: boolean } = {}): Promise<{ group: Group; delivery: Delivery | null }> {
    return this.#call('POST', `/groups/${encodeURIComponent(groupId)}/cancel`, { webhook: options.webhook ?? true });
  }
  /**
   * Makes the platform call the app's connector control endpoint for the group (PROTOCOL
   * §5.4) and answers what the app said: `start` (`fullSync` asks for a full import),
   * `status`, `toggle` or `update_metadata`. The app's error statuses are in the result, not
   * thrown; an unknown group throws (404) and nothing is sent.
   */
  syncControl(input: { groupId: string; action: SyncControlAction; fullSync?: boolean }): Promise<SyncControlResult> {
    const { groupId, ...body } = input;
    return this.#call('POST', `/groups/${encodeURIComponent(groupId)}/sync`, body);
  }
  /** The group's records of a collection; with `externalIds: true`, ids and references are id arrays. */
  listRecords(groupId: string, collection: string, options?: { externalIds?: false; limit?: number }): Promise<SandboxRecord[]>;
  listRecords(groupId: string, collection: string, options: { externalIds: boolean; limit?: number }): Promise<JsonObject[]>;
  listRecords(groupId: string, collection: string, options: { externalIds?: boolean; limit?: number } = {}): Promise<JsonObject[]> {
    const q = new URLSearchParams();
    if (options.externalIds) q.set('externalIds', 'true');
    if (options.limit !== undefined) q.set('limit', String(options.limit));
    return this.#call('GET', `/connec/${encodeURIComponent(groupId)}/${encodeURIComponent(collection)}?${q}`);
  }
  /** One record; with `externalIds: true`, ids and references are id arrays. */
  getRecord(groupId: string, collection: string, id: string, options?: { externalIds?: false }): Promise<SandboxRecord>;
  getRecord(groupId: string, collection: string, id: string, options: { externalIds: boolean }): Promise<JsonObject>;
  getRecord(groupId: string, collection: string, id: string, options: { externalIds?: boolean } = {}): Promise<JsonObject> {
    return this.#call('GET', `/connec/${encodeURIComponent(groupId)}/${encodeURIComponent(collection)}/${encodeURIComponent(id)}${options.externalIds ? '?externalIds=true' : ''}`);
  }
  /** Creates a record as another party (the app is notified). */
  createRecord(groupId: string, collection: string, record: JsonObject): Promise<SandboxRecord> {
    return this.#call('POST', `/connec/${encodeURIComponent(groupId)}/${encodeURIComponent(collection)}`, { [collection]: record });
  }
  /** Partially updates a record as another party (the app is notified). */
  updateRecord(groupId: string, collection: string, id: string, patch: JsonObject): Promise<SandboxRecord> {
    return this.#call('PUT', `/connec/${encodeURIComponent(groupId)}/${encodeURIComponent(collection)}/${encodeURIComponent(id)}`, { [collection]: patch });
  }
  /** Sends an account webhook to the app without changing any state (a "resend"). */
  triggerWebhook(input: { type: 'group.deleted'; groupId: string } | { type: 'group_user.deleted'; groupId: string; userId: string }): Promise<Delivery> {
    return this.#call('POST', '/webhooks', input);
  }
  listBills(groupId?: string): Promise<AdminBill[]> {
    return this.#call('GET', `/bills${groupId ? `?group_id=${encodeURIComponent(groupId)}` : ''}`);
  }
  listRecurringBills(groupId?: string): Promise<AdminRecurringBill[]> {
    return this.#call('GET', `/recurring_bills${groupId ? `?group_id=${encodeURIComponent(groupId)}` : ''}`);
  }
  /** Marks a bill invoiced (it can no longer be cancelled through the Account API). */
  invoiceBill(billId: string): Promise<AdminBill> {
    return this.#call('POST', `/bills/${encodeURIComponent(billId)}/invoice`);
  }
  deliveries(): Promise<Delivery[]> {
    return this.#call('GET', '/deliveries');
  }
  /** Sends coalesced notifications now and waits until no delivery is pending or awaiting a retry. */
  waitForDeliveries(timeoutMs = 10_000): Promise<{ idle: boolean; deliveries: Delivery[] }> {
    return this.#call('POST', '/deliveries/wait', { timeoutMs });
  }
  faults(): Promise<FaultRule[]> {
    return this.#call('GET', '/faults');
  }
  addFault(input: FaultInput): Promise<FaultRule> {
    return this.#call('POST', '/faults', input);
  }
  removeFault(id: string): Promise<{ removed: true }> {
    return this.#call('DELETE', `/faults/${encodeURIComponent(id)}`);
  }
  clearFaults(): Promise<{ cleared: true }> {
    return this.#call('DELETE', '/faults');
  }
  /** SP-initiated login without a browser: the SAMLResponse the IdP would auto-post. */
  ssoLogin(input: SsoLoginInput): Promise<SsoLoginResult> {
    return this.#call('POST', '/sso/login', input);
  }
  /** An unsolicited (IdP-initiated) SAMLResponse for a member of a group. */
  ssoIdpInitiated(input: { userId: string; groupId: string; relayState?: string }): Promise<SsoLoginResult> {
    return this.#call('POST', '/sso/idp-initiated', input);
  }
}
