import { renderBill, renderRecurringBill } from './account.js';
import { CONNEC_COLLECTIONS } from './connec/collections.js';
import { ConnecError, renderRecord } from './connec/records.js';
import { FaultInputError, type FaultInput } from './faults.js';
import { BodyParseError, decodePathSegments, json, MALFORMED_PATH_MESSAGE, parseBody, type SandboxRequest, type SandboxResponse } from './http.js';
import { idpInitiatedLogin, programmaticLogin } from './idp.js';
import { GROUP_ROLES, type GroupInput, type Platform, PlatformError, SYNC_CONTROL_ACTIONS, type UserInput } from './platform.js';
import { seedData } from './seed.js';
import type { FaultKind, GroupRole, JsonObject } from './types.js';
import { isRecord, parseInstant } from './util.js';

export const ADMIN_PREFIX = '/__admin';

function fail(status: number, field: string, message: string): SandboxResponse {
  return json(status, { error: { field, message } });
}

/** The admin API's `field` for a Connec! refusal. */
function connecErrorField(err: ConnecError): string {
  if (err.code === 'unknown-resource') return 'collection';
  if (err.code === 'resource-not-found') return 'id';
  return 'record';
}

function str(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  return typeof v === 'string' ? v : undefined;
}

function bool(body: Record<string, unknown>, key: string): boolean | undefined {
  const v = body[key];
  return typeof v === 'boolean' ? v : undefined;
}

function num(body: Record<string, unknown>, key: string): number | undefined {
  const v = body[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function role(value: unknown): GroupRole | undefined {
  return GROUP_ROLES.find((r) => r === value);
}

function groupInput(body: Record<string, unknown>): GroupInput {
  const metadata = body.metadata;
  const input: GroupInput = {};
  const id = str(body, 'id');
  if (id !== undefined) input.id = id;
  const fields = ['name', 'email', 'marketplace', 'orgUid', 'freeTrialEndAt', 'currency', 'country', 'city', 'timezone'] as const;
  for (const f of fields) {
    const v = str(body, f);
    if (v !== undefined) input[f] = v;
  }
  const card = bool(body, 'hasCreditCard');
  if (card !== undefined) input.hasCreditCard = card;
  if (typeof body.mainAccounting === 'string' || body.mainAccounting === null) input.mainAccounting = body.mainAccounting;
  if (typeof body.resellerId === 'string' || body.resellerId === null) input.resellerId = body.resellerId;
  if (isRecord(metadata)) input.metadata = metadata;
  if (input.freeTrialEndAt !== undefined) {
    const t = parseInstant(input.freeTrialEndAt);
    if (Number.isNaN(t)) throw new PlatformError(400, 'freeTrialEndAt', 'must be an ISO date');
    input.freeTrialEndAt = new Date(t).toISOString();
  }
  return input;
}

function userInput(body: Record<string, unknown>): UserInput {
  const input: UserInput = {};
  const fields = ['id', 'name', 'surname', 'email', 'companyName', 'country', 'password'] as const;
  for (const f of fields) {
    const v = str(body, f);
    if (v !== undefined) input[f] = v;
  }
  const memberships = body.memberships;
  if (memberships !== undefined) {
    if (!Array.isArray(memberships)) throw new PlatformError(400, 'memberships', 'must be an array of {groupId, role}');
    input.memberships = memberships.map((m: unknown) => {
      if (!isRecord(m) || typeof m.groupId !== 'string') throw new PlatformError(400, 'memberships', 'each membership needs a groupId');
      const r = m.role === undefined ? undefined : role(m.role);
      if (m.role !== undefined && r === undefined) throw new PlatformError(400, 'role', `Unknown role ${String(m.role)}`);
      return r ? { groupId: m.groupId, role: r } : { groupId: m.groupId };
    });
  }
  return input;
}

function faultInput(body: Record<string, unknown>): FaultInput {
  const kind = str(body, 'kind');
  const path = str(body, 'path');
  if (!kind || !path) throw new FaultInputError('path and kind are required');
  const input: FaultInput = { kind: kind as FaultKind, path };
  const method = str(body, 'method');
  if (method) input.method = method;
  for (const key of ['latencyMs', 'status', 'retryAfterSeconds', 'rate', 'count'] as const) {
    const v = num(body, key);
    if (v !== undefined) input[key] = v;
  }
  return input;
}

/** The admin HTTP API used by tests (`/__admin/...`, JSON in and out). */
export async function handleAdmin(platform: Platform, req: SandboxRequest): Promise<SandboxResponse | null> {
  const path = req.url.pathname;
  if (path !== ADMIN_PREFIX && !path.startsWith(`${ADMIN_PREFIX}/`)) return null;
  const seg = decodePathSegments(path.slice(ADMIN_PREFIX.length));
  if (seg === null) return fail(400, 'path', MALFORMED_PATH_MESSAGE);
  const method = req.method;
  const store = platform.store;
  let body: Record<string, unknown> = {};
  try {
    if (method === 'POST' || method === 'PUT') body = parseBody(req);
  } catch (e) {
    if (e instanceof BodyParseError) return fail(400, 'body', e.message);
    throw e;
  }
  try {
    const [a, b, c, d, e] = seg;
    if (a === 'state' && method === 'GET') {
      return json(200, {
        url: platform.url,
        appUrl: platform.options.appUrl,
        persistent: store.persistent,
        marketplaces: [...store.marketplaces.values()].map((m) => ({ name: m.name, apiId: m.apiId, apiKey: m.apiKey, fingerprint: m.fingerprint })),
        counts: { groups: store.groups.size, users: store.users.size, records: store.records.size, bills: store.bills.size, recurringBills: store.recurringBills.size, deliveries: platform.notifier.deliveries.length },
      });
    }
    if (a === 'reset' && method === 'POST') {
      store.clearData();
      platform.notifier.reset();
      platform.faults?.clear();
      platform.idpSessions?.clear();
      const records = num(body, 'seed');
      const summary = records !== undefined ? seedData(platform, { records }) : null;
      return json(200, { reset: true, seed: summary });
    }
    if (a === 'seed' && method === 'POST') {
      const records = num(body, 'records');
      if (records === undefined || records < 0) return fail(400, 'records', 'records must be a non-negative number');
      const random = num(body, 'random');
      const groups = num(body, 'groups');
      if (store.groups.size > 0) return fail(409, 'records', 'The sandbox already holds data: reset first');
      return json(200, seedData(platform, { records, ...(random !== undefined ? { random } : {}), ...(groups !== undefined ? { groups } : {}) }));
    }
    if (a === 'marketplaces' && method === 'GET' && b === undefined) {
      return json(200, [...store.marketplaces.values()].map((m) => platform.marketplaceDocument(m)));
    }
    if (a === 'groups') {
      if (b === undefined && method === 'GET') return json(200, [...store.groups.values()]);
      if (b === undefined && method === 'POST') return json(201, platform.createGroup(groupInput(body)));
      if (b !== undefined) {
        const group = platform.requireGroup(b);
        if (c === undefined && method === 'GET') return json(200, { ...group, members: platform.membersOf(group.id) });
        if (c === 'credentials' && method === 'GET') {
          const m = store.marketplaces.get(group.marketplace);
          return json(200, { groupId: group.id, orgUid: group.orgUid, marketplace: group.marketplace, apiId: m?.apiId, apiKey: m?.apiKey });
        }
        if (c === 'cancel' && method === 'POST') {
          const delivery = platform.cancelGroup(group.id, bool(body, 'webhook') ?? true);
          return json(200, { group, delivery });
        }
        if (c === 'sync' && d === undefined && method === 'POST') {
          const action = SYNC_CONTROL_ACTIONS.find((x) => x === body.action);
          if (!action) return fail(400, 'action', `action must be one of ${SYNC_CONTROL_ACTIONS.map((x) => `'${x}'`).join(', ')}`);
          if (body.fullSync !== undefined && typeof body.fullSync !== 'boolean') return fail(400, 'fullSync', 'fullSync must be a boolean');
          const fullSync = bool(body, 'fullSync');
          return json(200, await platform.syncControl(group.id, action, fullSync !== undefined ? { fullSync } : {}));
        }
        if (c === 'users' && d === undefined && method === 'POST') {
          const r = role(body.role ?? 'Member');
          const userId = str(body, 'userId');
          if (!userId || !r) return fail(400, 'userId', 'userId and a valid role are required');
          return json(201, platform.addMember(group.id, userId, r));
        }
        if (c === 'users' && d !== undefined && method === 'DELETE') {
          const delivery = platform.removeMember(group.id, d, req.url.searchParams.get('webhook') !== 'false');
          return json(200, { removed: true, delivery });
        }
      }
    }
    if (a === 'webhooks' && b === undefined && method === 'POST') {
      const type = str(body, 'type');
      const groupId = str(body, 'groupId');
      const userId = str(body, 'userId');
      if (!groupId) return fail(400, 'groupId', 'groupId is required');
      if (type === 'group.deleted') return json(200, platform.sendGroupDeleted(groupId));
      if (type === 'group_user.deleted') {
        if (!userId) return fail(400, 'userId', 'userId is required');
        return json(200, platform.sendGroupUserDeleted(groupId, userId));
      }
      return fail(400, 'type', "type must be 'group.deleted' or 'group_user.deleted'");
    }
    if (a === 'apps') {
      if (b === undefined && method === 'GET') return json(200, [...store.otherApps.values()]);
      if (b === undefined && method === 'POST') {
        const groupIds = body.groupIds;
        if (!Array.isArray(groupIds) || !groupIds.every((g): g is string => typeof g === 'string')) return fail(400, 'groupIds', 'groupIds must be an array of group ids');
        return json(201, platform.createOtherApp(groupIds, str(body, 'name')));
      }
    }
    if (a === 'users') {
      if (b === undefined && method === 'GET') return json(200, [...store.users.values()].map((u) => ({ ...u, memberships: platform.membershipsOf(u.id) })));
      if (b === undefined && method === 'POST') {
        const user = platform.createUser(userInput(body));
        return json(201, { ...user, memberships: platform.membershipsOf(user.id) });
      }
      if (b !== undefined && method === 'GET') {
        const user = store.users.get(b);
        if (!user) return fail(404, 'id', `Unknown user ${b}`);
        return json(200, { ...user, memberships: platform.membershipsOf(user.id) });
      }
    }
    if (a === 'connec' && b !== undefined && c !== undefined) {
      const group = platform.requireGroup(b);
      // Refused by name, as Connec! does: a misspelt collection (`person`) would otherwise list
      // nothing and look like an empty one.
      if (!CONNEC_COLLECTIONS.includes(c)) return fail(400, 'collection', `Unknown resource ${c}`);
      const externalIds = req.url.searchParams.get('externalIds') === 'true';
      const record = (r: Parameters<typeof renderRecord>[2]) => renderRecord(store, group, r, externalIds);
      if (d === undefined && method === 'GET') {
        const top = Number(req.url.searchParams.get('limit') ?? '1000');
        return json(200, store.listRecords(group.id, c).slice(0, Number.isFinite(top) ? top : 1000).map(record));
      }
      if (d === undefined && method === 'POST') {
        const payload = isRecord(body[c]) ? body[c] : body;
        return json(201, record(platform.connecCreate(group.id, c, JSON.parse(JSON.stringify(payload)) as JsonObject, 'admin')));
      }
      if (d !== undefined && e === undefined && method === 'GET') {
        const r = store.records.get(d);
        if (!r || r.groupId !== group.id || r.collection !== c) return fail(404, 'id', 'Resource not found');
        return json(200, record(r));
      }
      if (d !== undefined && e === undefined && method === 'PUT') {
        const payload = isRecord(body[c]) ? body[c] : body;
        return json(200, record(platform.connecUpdate(group.id, c, d, JSON.parse(JSON.stringify(payload)) as JsonObject, 'admin')));
      }
    }
    if ((a === 'bills' || a === 'recurring_bills') && method === 'GET' && b === undefined) {
      const gid = req.url.searchParams.get('group_id');
      const list = a === 'bills' ? [...store.bills.values()].map(renderBill) : [...store.recurringBills.values()].map(renderRecurringBill);
      return json(200, gid ? list.filter((x) => x.group_id === gid) : list);
    }
    if (a === 'bills' && b !== undefined && c === 'invoice' && method === 'POST') {
      const bill = store.bills.get(b);
      if (!bill) return fail(404, 'id', `Unknown bill ${b}`);
      if (bill.status === 'cancelled') return fail(409, 'status', 'A cancelled bill cannot be invoiced');
      bill.status = 'invoiced';
      bill.updatedAt = new Date().toISOString();
      store.putBill(bill);
      return json(200, renderBill(bill));
    }
    if (a === 'deliveries') {
      if (b === undefined && method === 'GET') return json(200, platform.notifier.deliveries);
      if (b === 'wait' && method === 'POST') {
        platform.notifier.flushAll();
        const timeoutMs = num(body, 'timeoutMs') ?? 10_000;
        let timer: NodeJS.Timeout | undefined;
        const idle = await Promise.race([
          platform.notifier.whenIdle().then(() => true),
          new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(false), timeoutMs);
          }),
        ]);
        clearTimeout(timer);
        return json(200, { idle, deliveries: platform.notifier.deliveries });
      }
    }
    if (a === 'faults') {
      const faults = platform.faults;
      if (!faults) return fail(500, 'faults', 'Fault injection unavailable');
      if (b === undefined && method === 'GET') return json(200, faults.rules);
      if (b === undefined && method === 'POST') return json(201, faults.add(faultInput(body)));
      if (b === undefined && method === 'DELETE') {
        faults.clear();
        return json(200, { cleared: true });
      }
      if (b !== undefined && method === 'DELETE') return faults.remove(b) ? json(200, { removed: true }) : fail(404, 'id', `Unknown fault ${b}`);
    }
    if (a === 'sso' && method === 'POST') {
      if (b === 'login') {
        const userId = str(body, 'userId');
        if (!userId) return fail(400, 'userId', 'userId is required');
        const input: Parameters<typeof programmaticLogin>[1] = { userId };
        const url = str(body, 'authnRequestUrl');
        const sr = str(body, 'samlRequest');
        const gid = str(body, 'groupId');
        const relay = str(body, 'relayState');
        if (url) input.authnRequestUrl = url;
        if (sr) input.samlRequest = sr;
        if (gid) input.groupId = gid;
        if (relay !== undefined) input.relayState = relay;
        return json(200, programmaticLogin(platform, input));
      }
      if (b === 'idp-initiated') {
        const userId = str(body, 'userId');
        const groupId = str(body, 'groupId');
        if (!userId || !groupId) return fail(400, 'userId', 'userId and groupId are required');
        const relay = str(body, 'relayState');
        return json(200, idpInitiatedLogin(platform, { userId, groupId, ...(relay !== undefined ? { relayState: relay } : {}) }));
      }
    }
    return fail(404, 'path', `No admin route ${method} ${path}`);
  } catch (err) {
    if (err instanceof PlatformError) return fail(err.status, err.field, err.message);
    if (err instanceof FaultInputError) return fail(400, 'fault', err.message);
    // Connec! refusals (an unknown collection, a record that breaks a rule) reach the admin API
    // through the platform: answered in the admin API's own `{ error: { field, message } }`, so
    // SandboxAdminError carries their detail instead of a bare "Admin API error 400".
    if (err instanceof ConnecError) return fail(err.status, connecErrorField(err), err.message);
    throw err;
  }
}
