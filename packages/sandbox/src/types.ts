/** A Maestrano marketplace (tenant / preset) served by the sandbox. */
export interface Marketplace {
  name: string;
  apiId: string;
  apiKey: string;
  privateKeyPem: string;
  certificatePem: string;
  /** SHA-1 of the certificate DER, colon-separated upper-case hex. */
  fingerprint: string;
  externalIds: boolean;
  createdAt: string;
}

export interface Group {
  id: string;
  name: string;
  email: string;
  marketplace: string;
  orgUid: string;
  hasCreditCard: boolean;
  freeTrialEndAt: string;
  currency: string;
  country: string;
  city: string;
  timezone: string;
  status: 'running' | 'terminated';
  mainAccounting: string | null;
  metadata: Record<string, unknown>;
  resellerId: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface User {
  id: string;
  name: string;
  surname: string;
  email: string;
  companyName: string;
  country: string;
  password: string;
  createdAt: string;
  updatedAt: string;
}

export type GroupRole = 'Member' | 'Power User' | 'Admin' | 'Super Admin';

export interface Membership {
  groupId: string;
  userId: string;
  role: GroupRole;
}

export type BillStatus = 'submitted' | 'invoiced' | 'cancelled';

export interface Bill {
  id: string;
  groupId: string;
  priceCents: number;
  description: string;
  currency: string;
  units: number;
  periodStartedAt: string | null;
  periodEndedAt: string | null;
  thirdParty: boolean;
  status: BillStatus;
  createdAt: string;
  updatedAt: string;
}

export type RecurringPeriod = 'day' | 'week' | 'semimonth' | 'month' | 'year';

export interface RecurringBill {
  id: string;
  groupId: string;
  priceCents: number;
  description: string;
  currency: string;
  period: RecurringPeriod;
  frequency: number;
  cycles: number | null;
  startDate: string;
  initialCents: number;
  status: 'submitted' | 'active' | 'expired' | 'cancelled';
  lastExecutionAt: string | null;
  nextExecutionAt: string | null;
  remainingCycles: number | null;
  createdAt: string;
  updatedAt: string;
}

/** An id map entry (PROTOCOL §6.6). */
export interface ExternalId {
  id: string;
  provider: string;
  realm: string;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * A Connec! record as the admin API shows it: `id` is its Connec! id (a string, ready to be
 * used as another record's reference), with the system fields every record carries.
 */
export type SandboxRecord = JsonObject & {
  id: string;
  group_id: string;
  channel_id: string;
  resource_type: string;
  created_at: string;
  updated_at: string;
};

/** A stored Connec! record; references inside `data` are canonical Connec! UUID strings. */
export interface ConnecRecord {
  id: string;
  groupId: string;
  collection: string;
  data: JsonObject;
  createdAt: string;
  updatedAt: string;
}

/** Credentials of another application connected to some groups (its Connec! changes are notified). */
export interface OtherApp {
  name: string;
  apiId: string;
  apiKey: string;
  groupIds: string[];
  createdAt: string;
}

export interface SsoSession {
  token: string;
  userId: string;
  valid: boolean;
  createdAt: string;
}

export interface DeliveryAttempt {
  at: string;
  status: number | null;
  error: string | null;
}

/** A connector control call the platform makes to the app (PROTOCOL §5.4). */
export type SyncControlAction = 'start' | 'status' | 'toggle' | 'update_metadata';

export interface Delivery {
  id: string;
  kind: 'connec.notification' | 'account.group.deleted' | 'account.group_user.deleted' | `sync.${SyncControlAction}`;
  marketplace: string;
  method: 'POST' | 'DELETE' | 'GET' | 'PUT';
  url: string;
  body: string | null;
  state: 'pending' | 'delivered' | 'failed';
  attempts: DeliveryAttempt[];
  nextAttemptAt: string | null;
  createdAt: string;
  /**
   * The app's answer to a connector control call (`sync.*`, sent once, never retried): its
   * status and body text (first 64 KiB). Absent on notifications and account webhooks.
   */
  response?: { status: number; body: string };
}

export type FaultKind = 'latency' | 'status' | 'rate-limit' | 'drop' | 'truncate';

export interface FaultRule {
  id: string;
  /** Glob on the request path (`*` matches any characters, including `/`). */
  path: string;
  method?: string;
  kind: FaultKind;
  latencyMs?: number;
  status?: number;
  retryAfterSeconds?: number;
  /** Probability in [0, 1] that a matching request is affected (default 1). */
  rate?: number;
  /** Affect only the next `count` matching requests. */
  count?: number;
  hits: number;
}
