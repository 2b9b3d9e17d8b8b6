/**
 * A small Maestrano Account API on loopback HTTP, faithful to PROTOCOL §4 (the behaviour of
 * the open-source API sandbox): Basic auth, the `{success, errors, data}` envelope, 401 /
 * 400 / 500 error bodies, `show` answering an unknown id with 200 + success=false, equality
 * filters with the `_after`/`_before` suffixes (unknown filter -> empty list), bills and
 * recurring bills with the platform's validations. Used by the sdk's own tests, which may
 * not depend on @org/maestrano-sandbox (dependency arrows point down).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

type Row = Record<string, unknown> & { id: string };

export interface FaultPlan {
  /** Answer the next `times` matching requests with `status` (500 body per PROTOCOL). */
  status: number;
  times: number;
  method?: string;
  pathPrefix?: string;
  /** When true, the request is processed (e.g. the bill created) and only the answer fails. */
  afterProcessing?: boolean;
  /** Delay before answering, in ms (for timeouts). */
  delayMs?: number;
  retryAfter?: string;
  /** The `errors` map of the answer (default: the 500 system error, or `{request:["rejected"]}`). */
  errors?: Record<string, string[]>;
  /** A raw body instead of the JSON envelope. */
  rawBody?: string;
  /** When true, the request is never answered (nor processed): it is listed in `held`. */
  hold?: boolean;
}

/** A request held by a `hold` fault; `closedUnanswered` turns true when the client gives up on it. */
export interface HeldRequest {
  method: string;
  path: string;
  closedUnanswered: boolean;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export interface AccountApiServer {
  url: string;
  apiId: string;
  apiKey: string;
  groups: Map<string, Row>;
  users: Map<string, Row>;
  bills: Map<string, Row>;
  recurringBills: Map<string, Row>;
  requests: RecordedRequest[];
  faults: FaultPlan[];
  held: HeldRequest[];
  addGroup(id: string, attrs?: Record<string, unknown>): Row;
  addUser(id: string, groupIds: string[], attrs?: Record<string, unknown>): Row;
  close(): Promise<void>;
}

const SYSTEM_ERROR = {
  system: ['A system error occured. Please retry later or contact support@maestrano.com if the issue persists.'],
};
const PERIODS: Record<string, number> = { day: 1, week: 7, semimonth: 15, month: 31, year: 366 };

function envelope(res: ServerResponse, status: number, success: boolean, data: unknown, errors: unknown = {}) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ success, errors, data }));
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks).toString('utf8');
  if (raw === '') return {};
  const type = req.headers['content-type'] ?? '';
  if (type.includes('application/json')) return JSON.parse(raw);
  if (type.includes('application/x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(raw));
  return {};
}

function applyFilters(rows: Row[], query: Record<string, string>): Row[] {
  let out = rows;
  for (const [key, value] of Object.entries(query)) {
    const m = /^(.*?)_(strictly_after|strictly_greater_than|after|greater_than|strictly_before|strictly_lower_than|before|lower_than)$/.exec(key);
    const attr = m ? m[1]! : key;
    if (!out.every((r) => attr in r)) return []; // unknown filter name: empty list (PROTOCOL §4.5)
    out = out.filter((row) => {
      const v = row[attr];
      if (!m) return String(v) === value;
      const a = typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? Date.parse(v) : Number(v);
      const b = Number.isNaN(Date.parse(value)) ? Number(value) : Date.parse(value);
      switch (m[2]) {
        case 'after':
        case 'greater_than':
          return a >= b;
        case 'strictly_after':
        case 'strictly_greater_than':
          return a > b;
        case 'before':
        case 'lower_than':
          return a <= b;
        default:
          return a < b;
      }
    });
  }
  return out;
}

export async function startAccountApiServer(
  options: { apiId?: string; apiKey?: string; now?: () => Date } = {},
): Promise<AccountApiServer> {
  const apiId = options.apiId ?? 'app-1';
  const apiKey = options.apiKey ?? 'secret-key-1';
  const now = options.now ?? (() => new Date());
  const groups = new Map<string, Row>();
  const users = new Map<string, Row>();
  const bills = new Map<string, Row>();
  const recurringBills = new Map<string, Row>();
  const memberships = new Map<string, string[]>();
  const requests: RecordedRequest[] = [];
  const faults: FaultPlan[] = [];
  const held: HeldRequest[] = [];
  let seq = 0;
  const expected = `Basic ${Buffer.from(`${apiId}:${apiKey}`).toString('base64')}`;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const query = Object.fromEntries(url.searchParams);
    const body = await readBody(req);
    requests.push({ method, path: url.pathname, query, headers: req.headers, body });

    const fault = faults.find(
      (f) => f.times > 0 && (!f.method || f.method === method) && (!f.pathPrefix || url.pathname.startsWith(f.pathPrefix)),
    );
    if (fault) fault.times--;
    if (fault?.hold) {
      const entry: HeldRequest = { method, path: url.pathname, closedUnanswered: false };
      held.push(entry);
      res.on('close', () => {
        entry.closedUnanswered = !res.writableFinished;
      });
      return;
    }
    if (fault?.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
    if (fault && !fault.afterProcessing) return sendFault(res, fault);

    if (req.headers.authorization !== expected) {
      return envelope(res, 401, false, {}, { authentication: ['Invalid API token'] });
    }
    const m = /^\/api\/v1\/account\/(groups|users|bills|recurring_bills)(?:\/([^/]+))?$/.exec(url.pathname);
    if (!m) return envelope(res, 404, false, {}, { path: ['not found'] });
    const collection = m[1]!;
    const id = m[2] === undefined ? undefined : decodeURIComponent(m[2]);
    const store = { groups, users, bills, recurring_bills: recurringBills }[collection]!;

    if (method === 'GET' && id === undefined) {
      let rows = [...store.values()];
      const { group_id: groupId, ...filters } = query;
      if (groupId !== undefined) {
        rows =
          collection === 'users'
            ? rows.filter((u) => (memberships.get(u.id) ?? []).includes(groupId))
            : collection === 'groups'
              ? rows.filter((g) => g.id === groupId)
              : rows.filter((r) => r.group_id === groupId);
      }
      return done(res, fault, 200, true, applyFilters(rows, filters));
    }
    if (method === 'GET' && id !== undefined) {
      const row = store.get(id);
      // The sandbox's `show` answers an unknown id with 200 and an empty data object.
      if (!row) return envelope(res, 200, false, {}, { id: ['does not exist'] });
      return done(res, fault, 200, true, row);
    }
    if (method === 'POST' && id === undefined && (collection === 'bills' || collection === 'recurring_bills')) {
      const input = body as Record<string, unknown>;
      const errors = collection === 'bills' ? validateBill(input) : validateRecurring(input, now());
      if (Object.keys(errors).length > 0) return envelope(res, 400, false, {}, errors);
      if (!groups.has(String(input.group_id))) {
        return envelope(res, 400, false, {}, { group_id: ['does not exist or cannot be charged by your service'] });
      }
      seq++;
      const stamp = now().toISOString();
      const row: Row =
        collection === 'bills'
          ? {
              object: 'account_bill',
              id: `bill-${seq}`,
              group_id: input.group_id,
              price_cents: Number(input.price_cents),
              description: input.description,
              currency: input.currency ?? 'AUD',
              units: String(input.units ?? '1.0'),
              period_started_at: input.period_started_at ?? null,
              period_ended_at: input.period_ended_at ?? null,
              third_party: input.third_party === true || input.third_party === 'true',
              status: 'submitted',
              created_at: stamp,
              updated_at: stamp,
            }
          : {
              object: 'account_recurring_bill',
              id: `rbill-${seq}`,
              group_id: input.group_id,
              price_cents: Number(input.price_cents),
              description: input.description,
              currency: input.currency ?? 'AUD',
              period: String(input.period ?? 'Month').toLowerCase(),
              frequency: Number(input.frequency ?? 1),
              cycles: input.cycles == null ? null : Number(input.cycles),
              start_date: input.start_date ?? stamp,
              initial_cents: Number(input.initial_cents ?? 0),
              status: 'submitted',
              last_execution_at: null,
              next_execution_at: input.start_date ?? stamp,
              remaining_cycles: input.cycles == null ? null : Number(input.cycles),
              created_at: stamp,
              updated_at: stamp,
            };
      store.set(row.id, row);
      return done(res, fault, 200, true, row);
    }
    if (method === 'DELETE' && id !== undefined && (collection === 'bills' || collection === 'recurring_bills')) {
      const row = store.get(id);
      if (!row) return envelope(res, 400, false, {}, { id: ['does not exist'] });
      if (row.status === 'invoiced') {
        return envelope(res, 400, false, {}, { status: ['has already been set to invoiced and cannot be changed'] });
      }
      if (row.status === 'cancelled' || row.status === 'expired') {
        return envelope(res, 400, false, {}, { status: [`has already been set to ${String(row.status)} and cannot be changed`] });
      }
      row.status = 'cancelled';
      row.updated_at = now().toISOString();
      return done(res, fault, 200, true, row);
    }
    return envelope(res, 404, false, {}, { path: ['not found'] });
  }

  function done(res: ServerResponse, fault: FaultPlan | undefined, status: number, success: boolean, data: unknown) {
    if (fault) return sendFault(res, fault);
    return envelope(res, status, success, data);
  }

  function sendFault(res: ServerResponse, fault: FaultPlan) {
    if (fault.rawBody !== undefined) {
      res.writeHead(fault.status, { 'content-type': 'text/html' });
      res.end(fault.rawBody);
      return;
    }
    if (fault.retryAfter) res.setHeader('retry-after', fault.retryAfter);
    envelope(res, fault.status, false, {}, fault.errors ?? (fault.status >= 500 ? SYSTEM_ERROR : { request: ['rejected'] }));
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) envelope(res, 500, false, {}, SYSTEM_ERROR);
      else res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    apiId,
    apiKey,
    groups,
    users,
    bills,
    recurringBills,
    requests,
    faults,
    held,
    addGroup(id, attrs = {}) {
      const stamp = now().toISOString();
      const row: Row = {
        object: 'account_group',
        id,
        name: `Group ${id}`,
        email: `admin@${id}.example`,
        has_credit_card: false,
        free_trial_end_at: null,
        currency: 'USD',
        country: 'US',
        city: 'Boston',
        timezone: 'America/New_York',
        status: 'running',
        main_accounting: null,
        metadata: {},
        created_at: stamp,
        updated_at: stamp,
        ...attrs,
      };
      groups.set(id, row);
      return row;
    },
    addUser(id, groupIds, attrs = {}) {
      const stamp = now().toISOString();
      const row: Row = {
        object: 'account_user',
        id,
        name: 'John',
        surname: 'Doe',
        email: `${id}@example.com`,
        company_name: 'DoeCorp',
        country: 'AU',
        sso_session: 'secret-session-token',
        created_at: stamp,
        updated_at: stamp,
        ...attrs,
      };
      users.set(id, row);
      memberships.set(id, groupIds);
      return row;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

function validateBill(input: Record<string, unknown>): Record<string, string[]> {
  const errors: Record<string, string[]> = {};
  if (input.group_id == null || input.group_id === '') errors.group_id = ["can't be blank"];
  const price = Number(input.price_cents);
  if (input.price_cents == null) errors.price_cents = ["can't be blank"];
  else if (!Number.isInteger(price) || price <= 0) errors.price_cents = ['must be greater than 0'];
  if (input.description == null || input.description === '') errors.description = ["can't be blank"];
  if (input.units != null && !(Number(input.units) > 0)) errors.units = ['must be greater than 0'];
  return errors;
}

function validateRecurring(input: Record<string, unknown>, now: Date): Record<string, string[]> {
  const errors = validateBill(input);
  const period = String(input.period ?? 'Month').toLowerCase();
  const frequency = Number(input.frequency ?? 1);
  if (!(period in PERIODS)) errors.period = ['is not included in the list'];
  else if (period === 'semimonth' && frequency !== 1) errors.frequency = ['must be 1 for a SemiMonth period'];
  else if (frequency * PERIODS[period]! > 366) errors.frequency = ['frequency x period must not exceed 1 year'];
  if (input.start_date != null) {
    const start = Date.parse(String(input.start_date));
    if (Number.isNaN(start)) errors.start_date = ['is not a date'];
    else if (start < now.getTime() - 3_600_000) errors.start_date = ['cannot be more than 1 hour in the past'];
  }
  return errors;
}
