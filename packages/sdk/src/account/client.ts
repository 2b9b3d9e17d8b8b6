/**
 * The typed Account API client of one tenant (PROTOCOL §4.3): groups and users (read-only, and
 * the users' password check), bills and recurring bills (list, retrieve, create, cancel).
 * There is no update: the platform has none. Cancel is `DELETE`.
 */
import { z } from 'zod';
import { PayloadValidationError, ValidationFailedError } from '../errors/index.js';
import {
  type AccountHttp,
  type AccountHttpOptions,
  createAccountHttp,
  encodePath,
  type QueryValue,
  type RequestOptions,
} from './http.js';
import { encryptPassword } from './password.js';
import {
  type AccountGroup,
  AccountGroupSchema,
  type AccountUser,
  AccountUserSchema,
  type Bill,
  type BillCreateInput,
  billCreateBody,
  BillCreateSchema,
  BillSchema,
  type RecurringBill,
  type RecurringBillCreateInput,
  recurringBillCreateBody,
  RecurringBillCreateSchema,
  RecurringBillSchema,
} from './resources.js';

/**
 * List parameters. `groupId` scopes the list to one group. `where` holds equality filters on
 * the API's attribute names (`{ status: 'submitted' }`) and the platform's comparison
 * suffixes (`{ created_at_after: date }`: `_after`, `_strictly_after`, `_before`,
 * `_strictly_before`). Note that the platform answers an unknown filter name with an empty
 * list, not an error (PROTOCOL §4.5). Lists are not paginated: every row comes back.
 */
export interface ListParams {
  groupId?: string;
  where?: Record<string, QueryValue>;
}

export interface GroupsResource {
  list(params?: ListParams, options?: RequestOptions): Promise<AccountGroup[]>;
  retrieve(id: string, options?: RequestOptions): Promise<AccountGroup>;
}

/** Whose password `users.authenticate` checks: a user's uid (`usr-…`) or email address. */
export type UserAuthenticateInput = { id: string; email?: never; password: string } | { email: string; id?: never; password: string };

export interface UsersResource {
  list(params?: ListParams, options?: RequestOptions): Promise<AccountUser[]>;
  retrieve(id: string, options?: RequestOptions): Promise<AccountUser>;
  /**
   * Checks a user's Maestrano password (PROTOCOL §4.6), for an app that lets its users sign in
   * with their Maestrano credentials outside SSO (an API or a mobile client). The password
   * leaves encrypted with the tenant's `api.key` (AES-256-CBC, a new random IV each call) and
   * is never logged nor put in an error.
   *
   * Resolves to the user, or `null` when Maestrano answers that the password is wrong or the
   * user does not exist (it does not say which). Throws `PayloadValidationError` for a missing
   * id/email or password, `ConfigError` when `api.key` is shorter than 32 bytes, and the usual
   * API errors otherwise. Not retried (a POST).
   */
  authenticate(input: UserAuthenticateInput, options?: RequestOptions): Promise<AccountUser | null>;
}

export interface BillsResource {
  list(params?: ListParams, options?: RequestOptions): Promise<Bill[]>;
  retrieve(id: string, options?: RequestOptions): Promise<Bill>;
  /** Not retried (not idempotent): use `mno.billing.charge` for an exactly-once charge. */
  create(input: BillCreateInput, options?: RequestOptions): Promise<Bill>;
  /** Returns the bill with status `cancelled`; fails with `ValidationFailedError` once invoiced. */
  cancel(id: string, options?: RequestOptions): Promise<Bill>;
}

export interface RecurringBillsResource {
  list(params?: ListParams, options?: RequestOptions): Promise<RecurringBill[]>;
  retrieve(id: string, options?: RequestOptions): Promise<RecurringBill>;
  create(input: RecurringBillCreateInput, options?: RequestOptions): Promise<RecurringBill>;
  cancel(id: string, options?: RequestOptions): Promise<RecurringBill>;
}

export interface AccountClient {
  readonly groups: GroupsResource;
  readonly users: UsersResource;
  readonly bills: BillsResource;
  readonly recurringBills: RecurringBillsResource;
}

export interface AccountClientTenant {
  api: { id: string; key: string; host: string; base: string };
}

function listQuery(params: ListParams | undefined): Record<string, QueryValue | undefined> {
  if (params?.where && 'group_id' in params.where) {
    throw new PayloadValidationError('Use `groupId` rather than `where.group_id` to scope a list to one group', {
      issues: [{ path: 'where/group_id', message: 'use groupId' }],
    });
  }
  for (const [key, value] of Object.entries(params?.where ?? {})) {
    const bad =
      (value instanceof Date && Number.isNaN(value.getTime())) || (typeof value === 'number' && !Number.isFinite(value));
    if (bad) {
      throw new PayloadValidationError(`Invalid list filter where.${key}: ${String(value)}`, {
        issues: [{ path: `where/${key}`, message: value instanceof Date ? 'invalid date' : 'not a finite number' }],
      });
    }
  }
  return { ...params?.where, group_id: params?.groupId };
}

function requireId(id: string, what: string): string {
  if (typeof id !== 'string' || id.trim() === '') {
    throw new PayloadValidationError(`${what} id must be a non-empty string`, {
      issues: [{ path: 'id', message: 'required' }],
    });
  }
  return id;
}

function validate<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) {
    const issues = result.error.issues.map((i) => ({ path: i.path.map(String).join('/'), message: i.message }));
    throw new PayloadValidationError(
      `Invalid ${what}: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`,
      { issues },
    );
  }
  return result.data;
}

function resource<T>(http: AccountHttp, collection: string, schema: z.ZodType<T>, what: string) {
  return {
    list: (params?: ListParams, options?: RequestOptions) =>
      http.request({ method: 'GET', path: collection, query: listQuery(params), data: z.array(schema) }, options),
    retrieve: (id: string, options?: RequestOptions) =>
      http.request({ method: 'GET', path: encodePath(collection, requireId(id, what)), data: schema }, options),
    cancel: (id: string, options?: RequestOptions) =>
      http.request({ method: 'DELETE', path: encodePath(collection, requireId(id, what)), data: schema }, options),
  };
}

const AUTHENTICATE_FAILED = 'invalid password or non existing user';

function authenticateBody(input: UserAuthenticateInput, apiKey: string): Record<string, string> {
  const issues: { path: string; message: string }[] = [];
  const raw = (input ?? {}) as { id?: unknown; email?: unknown; password?: unknown };
  const id = typeof raw.id === 'string' && raw.id.trim() !== '' ? raw.id : null;
  const email = typeof raw.email === 'string' && raw.email.trim() !== '' ? raw.email : null;
  if (id === null && email === null) issues.push({ path: 'id', message: 'give the user id or email' });
  if (id !== null && email !== null) issues.push({ path: 'email', message: 'give the user id or email, not both' });
  if (typeof raw.password !== 'string' || raw.password === '') issues.push({ path: 'password', message: 'required, a non-empty string' });
  if (issues.length > 0) {
    throw new PayloadValidationError(`Invalid users.authenticate input: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { issues });
  }
  const password = encryptPassword(raw.password as string, apiKey);
  return id !== null ? { id, password } : { email: email as string, password };
}

/** An Account API client for one tenant's credentials. */
export function createAccountClient(tenant: AccountClientTenant, options: AccountHttpOptions = {}): AccountClient {
  const http = createAccountHttp(tenant.api, options);
  const groups = resource(http, 'groups', AccountGroupSchema, 'group');
  const users = resource(http, 'users', AccountUserSchema, 'user');
  const bills = resource(http, 'bills', BillSchema, 'bill');
  const recurring = resource(http, 'recurring_bills', RecurringBillSchema, 'recurring bill');
  return {
    groups: { list: groups.list, retrieve: groups.retrieve },
    users: {
      list: users.list,
      retrieve: users.retrieve,
      authenticate: async (input, options) => {
        const body = authenticateBody(input, tenant.api.key);
        try {
          return await http.request({ method: 'POST', path: 'users/authenticate', body, data: AccountUserSchema }, options);
        } catch (error) {
          // The platform's one answer for a wrong password and an unknown user (a 400 here, a
          // 200 with the error in the envelope on Maestrano's own sandbox).
          if (error instanceof ValidationFailedError && error.errors.some((e) => e.field === 'password' && e.message === AUTHENTICATE_FAILED)) return null;
          throw error;
        }
      },
    },
    bills: {
      list: bills.list,
      retrieve: bills.retrieve,
      cancel: bills.cancel,
      create: (input, options) => {
        const body = billCreateBody(validate(BillCreateSchema, input, 'bill'));
        return http.request({ method: 'POST', path: 'bills', body, data: BillSchema }, options);
      },
    },
    recurringBills: {
      list: recurring.list,
      retrieve: recurring.retrieve,
      cancel: recurring.cancel,
      create: (input, options) => {
        const body = recurringBillCreateBody(validate(RecurringBillCreateSchema, input, 'recurring bill'));
        return http.request({ method: 'POST', path: 'recurring_bills', body, data: RecurringBillSchema }, options);
      },
    },
  };
}
