import { createDecipheriv } from 'node:crypto';
import type { AdminBill, AdminRecurringBill } from './admin-client.js';
import { BodyParseError, decodePathSegments, json, MALFORMED_PATH_MESSAGE, parseBasicAuth, parseBody, type SandboxRequest, type SandboxResponse } from './http.js';
import { credentialsMatch, type Platform, safeEqual } from './platform.js';
import type { Bill, Group, JsonObject, JsonValue, Marketplace, RecurringBill, RecurringPeriod, User } from './types.js';
import { isRecord, newId, parseInstant } from './util.js';

type Errors = Record<string, string[]>;

export function envelope(status: number, data: JsonValue, errors: Errors = {}): SandboxResponse {
  return json(status, { success: Object.keys(errors).length === 0, errors, data }, accessControlHeaders());
}

export function accessControlHeaders(): Record<string, string> {
  return {
    'access-control-allow-origin': '*',
    'access-control-allow-methods': 'GET, POST, PUT, DELETE, OPTIONS',
    'access-control-allow-headers': 'Authorization, Content-Type, Accept, CONNEC-EXTERNAL-IDS',
  };
}

export const SYSTEM_ERROR: Errors = {
  system: ['A system error occured. Please retry later or contact support@maestrano.com if the issue persists.'],
};

function renderGroup(g: Group): JsonObject {
  return {
    object: 'account_group',
    id: g.id,
    name: g.name,
    email: g.email,
    has_credit_card: g.hasCreditCard,
    free_trial_end_at: g.freeTrialEndAt,
    currency: g.currency,
    country: g.country,
    city: g.city,
    timezone: g.timezone,
    status: g.status,
    main_accounting: g.mainAccounting,
    metadata: JSON.parse(JSON.stringify(g.metadata)) as JsonObject,
    org_uid: g.orgUid,
    created_at: g.createdAt,
    updated_at: g.updatedAt,
  };
}

function renderUser(u: User, ssoSession: string | null): JsonObject {
  return {
    object: 'account_user',
    id: u.id,
    name: u.name,
    surname: u.surname,
    email: u.email,
    company_name: u.companyName,
    country: u.country,
    sso_session: ssoSession,
    created_at: u.createdAt,
    updated_at: u.updatedAt,
  };
}

export function renderBill(b: Bill): AdminBill {
  return {
    object: 'account_bill',
    id: b.id,
    group_id: b.groupId,
    price_cents: b.priceCents,
    description: b.description,
    currency: b.currency,
    units: b.units,
    period_started_at: b.periodStartedAt,
    period_ended_at: b.periodEndedAt,
    third_party: b.thirdParty,
    status: b.status,
    created_at: b.createdAt,
    updated_at: b.updatedAt,
  };
}

export function renderRecurringBill(b: RecurringBill): AdminRecurringBill {
  return {
    object: 'account_recurring_bill',
    id: b.id,
    group_id: b.groupId,
    price_cents: b.priceCents,
    description: b.description,
    currency: b.currency,
    period: b.period,
    frequency: b.frequency,
    cycles: b.cycles,
    start_date: b.startDate,
    initial_cents: b.initialCents,
    status: b.status,
    last_execution_at: b.lastExecutionAt,
    next_execution_at: b.nextExecutionAt,
    remaining_cycles: b.remainingCycles,
    created_at: b.createdAt,
    updated_at: b.updatedAt,
  };
}

const SUFFIXES: Array<[string, (cmp: number) => boolean]> = [
  ['_strictly_greater_than', (c) => c > 0],
  ['_strictly_lower_than', (c) => c < 0],
  ['_strictly_after', (c) => c > 0],
  ['_strictly_before', (c) => c < 0],
  ['_greater_than', (c) => c >= 0],
  ['_lower_than', (c) => c <= 0],
  ['_after', (c) => c >= 0],
  ['_before', (c) => c <= 0],
];

function compareParam(actual: JsonValue | undefined, param: string): number {
  if (typeof actual === 'number') return actual - Number(param);
  const a = String(actual ?? '');
  const ta = parseInstant(a);
  const tb = parseInstant(param);
  if (/^\d{4}-\d{2}-\d{2}/.test(a) && /^\d{4}-\d{2}-\d{2}/.test(param) && !Number.isNaN(ta) && !Number.isNaN(tb)) return ta - tb;
  return a < param ? -1 : a > param ? 1 : 0;
}

function equalsParam(actual: JsonValue | undefined, param: string): boolean {
  if (actual === null || actual === undefined) return param === '' || param === 'null';
  if (typeof actual === 'boolean') return String(actual) === param;
  if (typeof actual === 'number') return actual === Number(param);
  if (typeof actual === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(actual) && /^\d{4}-\d{2}-\d{2}T/.test(param)) return parseInstant(actual) === parseInstant(param);
  return String(actual) === param;
}

/**
 * Attribute filters of PROTOCOL §4.5: equality on attribute names, comparison suffixes
 * (`_after`, `_strictly_before`, ...); an unknown attribute yields an empty list.
 */
function applyFilters(items: JsonObject[], query: URLSearchParams, knownKeys: readonly string[]): JsonObject[] {
  let out = items;
  for (const [key, value] of query) {
    if (knownKeys.includes(key)) {
      out = out.filter((item) => equalsParam(item[key], value));
      continue;
    }
    const suffix = SUFFIXES.find(([s]) => key.endsWith(s) && knownKeys.includes(key.slice(0, -s.length)));
    if (!suffix) return [];
    const attr = key.slice(0, -suffix[0].length);
    out = out.filter((item) => suffix[1](compareParam(item[attr], value)));
  }
  return out;
}

const GROUP_KEYS = Object.keys(renderGroup({ id: '', name: '', email: '', marketplace: '', orgUid: '', hasCreditCard: false, freeTrialEndAt: '', currency: '', country: '', city: '', timezone: '', status: 'running', mainAccounting: null, metadata: {}, resellerId: null, createdAt: '', updatedAt: '' }));
const USER_KEYS = ['object', 'id', 'name', 'surname', 'email', 'company_name', 'country', 'sso_session', 'created_at', 'updated_at', 'group_id'];
const BILL_KEYS = ['object', 'id', 'group_id', 'price_cents', 'description', 'currency', 'units', 'period_started_at', 'period_ended_at', 'third_party', 'status', 'created_at', 'updated_at'];
const RBILL_KEYS = ['object', 'id', 'group_id', 'price_cents', 'description', 'currency', 'period', 'frequency', 'cycles', 'start_date', 'initial_cents', 'status', 'last_execution_at', 'next_execution_at', 'remaining_cycles', 'created_at', 'updated_at'];

function toInteger(value: unknown): number | null {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^-?\d+$/.test(value.trim())) return Number(value.trim());
  return null;
}

function toDecimal(value: unknown): number | null {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value.trim())) return Number(value.trim());
  return null;
}

function toBool(value: unknown): boolean | null {
  if (value === undefined || value === null || value === '') return false;
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === '1' || value === 1) return true;
  if (value === 'false' || value === '0' || value === 0) return false;
  return null;
}

function toIso(value: unknown): string | null | 'invalid' {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string') return 'invalid';
  const t = parseInstant(value);
  return Number.isNaN(t) ? 'invalid' : new Date(t).toISOString();
}

function add(errors: Errors, field: string, message: string): void {
  const list = errors[field] ?? [];
  list.push(message);
  errors[field] = list;
}

/**
 * The caller's group that a `kind` may charge. A one-off bill may also charge a terminated group:
 * the app may post a final bill when it gets the group-deleted webhook (PROTOCOL §5.1), which
 * arrives after the cancellation (and may be handled asynchronously). Recurring bills need a running group.
 */
function chargeableGroup(platform: Platform, marketplace: Marketplace, groupId: unknown, kind: 'bill' | 'recurring_bill'): Group | null {
  if (typeof groupId !== 'string') return null;
  const g = platform.store.groups.get(groupId);
  if (!g || g.marketplace !== marketplace.name) return null;
  return g.status === 'running' || kind === 'bill' ? g : null;
}

/** The fields a bill and a recurring bill share: the group to charge, `price_cents` and `description`. */
function chargeFields(
  platform: Platform,
  marketplace: Marketplace,
  body: Record<string, unknown>,
  errors: Errors,
  kind: 'bill' | 'recurring_bill',
): { group: Group | null; priceCents: number | null; description: string } {
  const group = chargeableGroup(platform, marketplace, body.group_id, kind);
  if (!group) add(errors, 'group_id', 'does not exist or cannot be charged by your service');
  const priceCents = toInteger(body.price_cents);
  if (body.price_cents === undefined || body.price_cents === '') add(errors, 'price_cents', "can't be blank");
  else if (priceCents === null) add(errors, 'price_cents', 'is not a number');
  else if (priceCents <= 0) add(errors, 'price_cents', 'must be greater than 0');
  const description = typeof body.description === 'string' ? body.description.trim() : '';
  if (!description) add(errors, 'description', "can't be blank");
  return { group, priceCents, description };
}

/** The ISO 4217 codes (the platform validates against its currency table; Node's Intl stands in for it). */
const ISO_CURRENCIES: ReadonlySet<string> = new Set(Intl.supportedValuesOf('currency'));

/** `currency`, default AUD, upper-cased; it must be an ISO 4217 code (PROTOCOL §4.4). */
function currencyField(body: Record<string, unknown>, errors: Errors): string {
  const currency = body.currency === undefined || body.currency === '' ? 'AUD' : String(body.currency).toUpperCase();
  if (!ISO_CURRENCIES.has(currency)) add(errors, 'currency', 'is not a valid ISO 4217 currency');
  return currency;
}

function createBill(platform: Platform, marketplace: Marketplace, raw: Record<string, unknown>): SandboxResponse {
  const body = isRecord(raw.bill) ? raw.bill : raw;
  const errors: Errors = {};
  const { group, priceCents, description } = chargeFields(platform, marketplace, body, errors, 'bill');
  const units = body.units === undefined || body.units === '' ? 1 : toDecimal(body.units);
  if (units === null) add(errors, 'units', 'is not a number');
  else if (units <= 0) add(errors, 'units', 'must be greater than 0');
  const currency = currencyField(body, errors);
  const start = toIso(body.period_started_at);
  const end = toIso(body.period_ended_at);
  if (start === 'invalid') add(errors, 'period_started_at', 'is not a valid date');
  if (end === 'invalid') add(errors, 'period_ended_at', 'is not a valid date');
  if (start && end && start !== 'invalid' && end !== 'invalid' && start > end) add(errors, 'period_ended_at', 'must be after period_started_at');
  const thirdParty = toBool(body.third_party);
  if (thirdParty === null) add(errors, 'third_party', 'is not a boolean');
  if (Object.keys(errors).length > 0 || !group || priceCents === null || units === null || thirdParty === null) return envelope(400, {}, errors);
  const now = new Date().toISOString();
  const bill: Bill = {
    id: newId('bill'),
    groupId: group.id,
    priceCents,
    description,
    currency,
    units,
    periodStartedAt: start === 'invalid' ? null : start,
    periodEndedAt: end === 'invalid' ? null : end,
    thirdParty,
    status: 'submitted',
    createdAt: now,
    updatedAt: now,
  };
  platform.store.putBill(bill);
  return envelope(200, renderBill(bill));
}

const PERIODS: Record<string, RecurringPeriod> = { day: 'day', week: 'week', semimonth: 'semimonth', month: 'month', year: 'year' };
const MAX_FREQUENCY: Record<RecurringPeriod, number> = { day: 365, week: 52, semimonth: 1, month: 12, year: 1 };

function createRecurringBill(platform: Platform, marketplace: Marketplace, raw: Record<string, unknown>): SandboxResponse {
  const body = isRecord(raw.recurring_bill) ? raw.recurring_bill : raw;
  const errors: Errors = {};
  const { group, priceCents, description } = chargeFields(platform, marketplace, body, errors, 'recurring_bill');
  const periodName = String(body.period).toLowerCase();
  // An own key only: `constructor`, `__proto__` and the like are members of every object.
  const period = body.period === undefined || body.period === '' ? 'month' : Object.hasOwn(PERIODS, periodName) ? PERIODS[periodName] : undefined;
  if (!period) add(errors, 'period', 'is not included in the list (Day, Week, SemiMonth, Month, Year)');
  const frequency = body.frequency === undefined || body.frequency === '' ? 1 : toInteger(body.frequency);
  if (frequency === null || frequency < 1) add(errors, 'frequency', 'must be an integer greater than 0');
  else if (period === 'semimonth' && frequency !== 1) add(errors, 'frequency', 'must be 1 for a SemiMonth period');
  else if (period && frequency > MAX_FREQUENCY[period]) add(errors, 'frequency', 'frequency x period must not exceed 1 year');
  const cycles = body.cycles === undefined || body.cycles === null || body.cycles === '' ? null : toInteger(body.cycles);
  if (body.cycles !== undefined && body.cycles !== null && body.cycles !== '' && (cycles === null || cycles < 1)) add(errors, 'cycles', 'must be an integer greater than 0 (or null for unlimited)');
  const currency = currencyField(body, errors);
  const startIso = toIso(body.start_date);
  let startDate = new Date().toISOString();
  if (startIso === 'invalid') add(errors, 'start_date', 'is not a valid date');
  else if (startIso) {
    if (parseInstant(startIso) < Date.now() - 3600_000) add(errors, 'start_date', 'cannot be more than 1 hour in the past');
    startDate = startIso;
  }
  const initialCents = body.initial_cents === undefined || body.initial_cents === '' ? 0 : toInteger(body.initial_cents);
  if (initialCents === null || initialCents < 0) add(errors, 'initial_cents', 'must be an integer greater than or equal to 0');
  if (Object.keys(errors).length > 0 || !group || priceCents === null || !period || frequency === null || initialCents === null) return envelope(400, {}, errors);
  const now = new Date().toISOString();
  const bill: RecurringBill = {
    id: newId('rbill'),
    groupId: group.id,
    priceCents,
    description,
    currency,
    period,
    frequency,
    cycles,
    startDate,
    initialCents,
    status: 'submitted',
    lastExecutionAt: null,
    nextExecutionAt: startDate,
    remainingCycles: cycles,
    createdAt: now,
    updatedAt: now,
  };
  platform.store.putRecurringBill(bill);
  return envelope(200, renderRecurringBill(bill));
}

/** Decrypts `base64(IV)--base64(AES-256-CBC)` with the first 32 bytes of the api key (PROTOCOL §4.6). */
function decryptPassword(encrypted: string, apiKey: string): string | null {
  const [iv64, data64] = encrypted.split('--');
  if (!iv64 || !data64) return null;
  try {
    const key = Buffer.from(apiKey, 'utf8').subarray(0, 32);
    if (key.length !== 32) return null;
    const decipher = createDecipheriv('aes-256-cbc', key, Buffer.from(iv64, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(data64, 'base64')), decipher.final()]).toString('utf8');
  } catch {
    return null;
  }
}

function marketplaceUsers(platform: Platform, marketplace: Marketplace, groupId: string | null): User[] {
  const ids = new Set<string>();
  for (const m of platform.store.memberships.values()) {
    const g = platform.store.groups.get(m.groupId);
    if (!g || g.marketplace !== marketplace.name) continue;
    if (groupId !== null && m.groupId !== groupId) continue;
    ids.add(m.userId);
  }
  return [...ids].map((id) => platform.store.users.get(id)).filter((u): u is User => u !== undefined);
}

function latestSession(platform: Platform, userId: string): string | null {
  let token: string | null = null;
  for (const s of platform.store.sessions.values()) if (s.userId === userId && s.valid) token = s.token;
  return token;
}

function withoutGroupId(query: URLSearchParams): URLSearchParams {
  const q = new URLSearchParams(query);
  q.delete('group_id');
  return q;
}

/** `/api/v1/...`: ping and the Account API (PROTOCOL §4). */
export function handleAccountApi(platform: Platform, req: SandboxRequest): SandboxResponse | null {
  const path = req.url.pathname.replace(/\/+$/, '');
  if (!path.startsWith('/api/v1/account') && path !== '/api/v1/ping') return null;
  if (req.method === 'OPTIONS') return { status: 204, headers: accessControlHeaders(), body: '' };
  const creds = parseBasicAuth(req.headers);
  const marketplace = creds ? platform.marketplaceByCredentials(creds.user, creds.password) : undefined;
  if (!marketplace) return envelope(401, {}, { authentication: ['Invalid API token'] });
  if (path === '/api/v1/ping') return envelope(200, { msg: 'Ping successful! (API Authentication successful)' });
  const segments = decodePathSegments(path.slice('/api/v1/account'.length));
  if (segments === null) return envelope(400, {}, { path: [MALFORMED_PATH_MESSAGE] });
  const [collection, id, action] = segments;
  const query = req.url.searchParams;
  const groupScope = query.get('group_id');
  const store = platform.store;
  const ownGroup = (gid: string) => {
    const g = store.groups.get(gid);
    return g && g.marketplace === marketplace.name ? g : undefined;
  };
  let body: Record<string, unknown> = {};
  if (req.method === 'POST' || req.method === 'PUT') {
    try {
      body = parseBody(req);
    } catch (e) {
      if (e instanceof BodyParseError) return envelope(400, {}, { body: [e.message] });
      throw e;
    }
  }
  const notFound = (status: number) => envelope(status, {}, { id: ['does not exist'] });

  switch (collection) {
    case 'groups': {
      if (req.method !== 'GET' || action !== undefined) break;
      if (id !== undefined) {
        const g = ownGroup(id);
        return g ? envelope(200, renderGroup(g)) : notFound(200);
      }
      let groups = [...store.groups.values()].filter((g) => g.marketplace === marketplace.name).map(renderGroup);
      if (groupScope !== null) groups = groups.filter((g) => g.id === groupScope);
      return envelope(200, applyFilters(groups, withoutGroupId(query), GROUP_KEYS));
    }
    case 'users': {
      if (id === 'authenticate' && req.method === 'POST') {
        const password = typeof body.password === 'string' ? decryptPassword(body.password, marketplace.apiKey) : null;
        const candidates = marketplaceUsers(platform, marketplace, null);
        const user = candidates.find((u) => (typeof body.id === 'string' && u.id === body.id) || (typeof body.email === 'string' && u.email === body.email));
        if (!user || password === null || !safeEqual(password, user.password)) return envelope(400, {}, { password: ['invalid password or non existing user'] });
        return envelope(200, renderUser(user, latestSession(platform, user.id)));
      }
      if (req.method !== 'GET' || action !== undefined) break;
      const users = marketplaceUsers(platform, marketplace, groupScope);
      if (id !== undefined) {
        const u = users.find((x) => x.id === id);
        return u ? envelope(200, renderUser(u, latestSession(platform, u.id))) : notFound(200);
      }
      return envelope(200, applyFilters(users.map((u) => renderUser(u, latestSession(platform, u.id))), withoutGroupId(query), USER_KEYS));
    }
    case 'bills':
    case 'recurring_bills': {
      const isBill = collection === 'bills';
      const all = (isBill ? [...store.bills.values()] : [...store.recurringBills.values()]).filter((b) => ownGroup(b.groupId) !== undefined);
      const find = (bid: string) => all.find((b) => b.id === bid);
      const render = (b: Bill | RecurringBill) => ('units' in b ? renderBill(b) : renderRecurringBill(b));
      if (req.method === 'GET' && action === undefined) {
        if (id !== undefined) {
          const b = find(id);
          return b ? envelope(200, render(b)) : notFound(200);
        }
        const list = all.filter((b) => groupScope === null || b.groupId === groupScope).map(render);
        return envelope(200, applyFilters(list, withoutGroupId(query), isBill ? BILL_KEYS : RBILL_KEYS));
      }
      if (req.method === 'POST' && id === undefined) return isBill ? createBill(platform, marketplace, body) : createRecurringBill(platform, marketplace, body);
      if (req.method === 'DELETE' && id !== undefined && action === undefined) {
        const b = find(id);
        if (!b) return notFound(400);
        if (b.status === 'invoiced') return envelope(400, {}, { status: ['has already been set to invoiced and cannot be changed'] });
        b.status = 'cancelled';
        b.updatedAt = new Date().toISOString();
        if ('units' in b) store.putBill(b);
        else store.putRecurringBill(b);
        return envelope(200, render(b));
      }
      break;
    }
  }
  return envelope(404, {}, { path: [`No route matches ${req.method} ${path}`] });
}

/** `GET /api/config/v1/marketplaces` (PROTOCOL §1.4), Basic auth with the environment key/secret. */
export function handleDevPlatform(platform: Platform, req: SandboxRequest): SandboxResponse | null {
  const path = req.url.pathname.replace(/\/+$/, '');
  if (path !== '/api/config/v1/marketplaces') return null;
  const creds = parseBasicAuth(req.headers);
  const env = platform.store.environment;
  if (!creds || !env || !credentialsMatch(creds.user, creds.password, env.apiKey, env.apiSecret)) {
    return json(401, { error: 'Could not authenticate' });
  }
  if (req.method !== 'GET') return json(405, { error: 'Method not allowed' });
  return json(200, { marketplaces: [...platform.store.marketplaces.values()].map((m) => platform.marketplaceDocument(m)) });
}
