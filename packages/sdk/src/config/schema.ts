import * as z from 'zod';
import type { Logger, Tenant, TenantRegistry } from '../core/types.js';
import type { SsoError } from '../errors/index.js';
import type { OnLogin, ProvisioningHooks } from '../sso/types.js';
import type { BillingConfigInput } from '../billing/config.js';
import type { ConnectorDefinition } from '../entities/types.js';
import type { SyncModuleConfig } from '../sync/module.js';
import type { StorageAdapter } from '../storage/adapter.js';
import { DEFAULT_BODY_READ_TIMEOUT_MS, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_NOTIFICATION_BODY_BYTES } from '../http/body.js';
import { isTenantRegistry } from '../tenants/registry.js';
import { CONFIG_PARSE_OPTIONS, configIssues, strictObject } from './issues.js';
import { type ConfigIssue, configErrorOf, isResolvedTenant, type MarketplaceInput, tenantsOrIssues } from './tenant.js';

type AnyFunction = (...args: never[]) => unknown;

const fn = <T extends AnyFunction>(label: string) =>
  z.custom<T>((v) => typeof v === 'function', { error: `${label} must be a function` });

const isFunction = (v: unknown, key: string): boolean =>
  typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>)[key] === 'function';

/** A value handed over without its `await` (`tenants: tenantsFromFile(…)`, `storage: someAsyncSetup()`). */
const isThenable = (v: unknown): boolean =>
  (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as { then?: unknown }).then === 'function';

type RepositoryName = 'groups' | 'users' | 'idMaps' | 'cursors' | 'jobs' | 'ledger' | 'replay' | 'locks';

/**
 * Every method of every repository of the storage contract. Typed so that a method added to the
 * contract must be listed here: an adapter written against an earlier contract (a custom one,
 * or an older adapter package) is refused at start-up naming what it lacks, rather than failing
 * with "is not a function" in the middle of a sync.
 */
const STORAGE_METHODS: { [R in RepositoryName]: Record<keyof StorageAdapter[R], true> } = {
  groups: { get: true, list: true, claim: true, complete: true, release: true, update: true, cancel: true },
  users: { get: true, findByUserId: true, claim: true, complete: true, release: true, setStatus: true, upsertMembership: true, setMembershipStatus: true, listMemberships: true, seats: true },
  idMaps: { find: true, findManyByConnecIds: true, insert: true, insertMany: true, update: true, markApplied: true, clearError: true, list: true, purgeGroup: true },
  cursors: { get: true, advance: true, list: true, reset: true },
  jobs: {
    enqueue: true,
    enqueueMany: true,
    claim: true,
    heartbeat: true,
    heartbeatMany: true,
    complete: true,
    completeMany: true,
    fail: true,
    release: true,
    wake: true,
    wakeMany: true,
    get: true,
    counts: true,
    listDead: true,
    requeue: true,
    discard: true,
    purgeCompleted: true,
  },
  ledger: { get: true, claim: true, complete: true, release: true },
  replay: { remember: true, forget: true, purgeExpired: true },
  locks: { acquire: true, acquireMany: true, refresh: true, release: true, releaseMany: true },
};

/** `repository.method` names the value lacks (a repository missing altogether counts as one entry). */
function missingStorageParts(v: Record<string, unknown>): string[] {
  const missing: string[] = [];
  for (const [repo, methods] of Object.entries(STORAGE_METHODS)) {
    const value = v[repo];
    if (typeof value !== 'object' || value === null) {
      missing.push(repo);
      continue;
    }
    for (const method of Object.keys(methods)) if (!isFunction(value, method)) missing.push(`${repo}.${method}`);
  }
  return missing;
}

/** Something shaped like an adapter (its repositories are there), as opposed to another value. */
const looksLikeAdapter = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && Object.keys(STORAGE_METHODS).some((repo) => typeof (v as Record<string, unknown>)[repo] === 'object');

const storageSchema = z.custom<StorageAdapter>((v) => looksLikeAdapter(v) && missingStorageParts(v).length === 0, {
  error: (issue) => {
    if (isThenable(issue.input)) return 'is a Promise: await what builds the adapter first (storage: await setUpStorage()); a StorageAdapter is expected';
    if (!looksLikeAdapter(issue.input)) return 'must be a StorageAdapter (e.g. memoryAdapter() or prismaAdapter(prisma))';
    const id = typeof issue.input['id'] === 'string' ? ` "${issue.input['id']}"` : '';
    return `must be a StorageAdapter: the adapter${id} lacks ${missingStorageParts(issue.input).join(', ')} (written for an earlier storage contract? update the adapter package, or implement them: see STORAGE.md)`;
  },
});

const loggerSchema = z.custom<Logger>(
  (v) => ['debug', 'info', 'warn', 'error'].every((level) => isFunction(v, level)),
  { error: 'must be a Logger with debug/info/warn/error methods' },
);

const tenantsSchema = z.custom<TenantRegistry | readonly MarketplaceInput[]>(
  (v) => Array.isArray(v) || isTenantRegistry(v),
  {
    error: (issue) =>
      isThenable(issue.input)
        ? "is a Promise: await it first (tenants: await tenantsFromFile('maestrano.json'))"
        : 'must be a tenant registry (tenantsFromFile / tenantsFromDevPlatform) or an array of marketplace objects',
  },
);

const provisioningSchema = strictObject({
  createCompany: fn<ProvisioningHooks['createCompany']>('provisioning.createCompany'),
  createUser: fn<ProvisioningHooks['createUser']>('provisioning.createUser'),
  findUserByEmail: fn<NonNullable<ProvisioningHooks['findUserByEmail']>>('provisioning.findUserByEmail').optional(),
  addMembership: fn<NonNullable<ProvisioningHooks['addMembership']>>('provisioning.addMembership').optional(),
  cancelCompany: fn<NonNullable<ProvisioningHooks['cancelCompany']>>('provisioning.cancelCompany').optional(),
  removeMembership: fn<NonNullable<ProvisioningHooks['removeMembership']>>('provisioning.removeMembership').optional(),
  blockUser: fn<NonNullable<ProvisioningHooks['blockUser']>>('provisioning.blockUser').optional(),
  onSeatsChanged: fn<NonNullable<ProvisioningHooks['onSeatsChanged']>>('provisioning.onSeatsChanged').optional(),
});

/** Called instead of the default JSON error answer when SSO fails (e.g. to render a page). */
export type SsoErrorRenderer = (error: SsoError, args: { tenant: Tenant | null; request: Request }) => Promise<Response> | Response;

const ssoSchema = strictObject({
  /** Accepted clock skew for every SAML time check, in ms. Default 180 000 (3 min). */
  clockSkewMs: z.number().int().min(0).max(3_600_000).default(180_000),
  /**
   * Accept responses without InResponseTo (IdP-initiated). Default false. Such a response is bound to
   * no browser: whoever holds one for their own account can post it through a victim's browser and
   * sign the victim in as themselves (login CSRF).
   */
  allowIdpInitiated: z.boolean().default(false),
  /** Extra accepted `Audience` values (the api id, the ACS origin with or without its trailing `/`, and the ACS URL always are). */
  audiences: z.array(z.string().min(1)).default([]),
  requestBinding: strictObject({
      /**
       * Key (>= 32 chars) that signs the cookie binding an AuthnRequest id to the browser.
       * Default: derived per tenant from its api key (identical on every instance).
       */
      secret: z.string({ error: 'sso.requestBinding.secret must be a string' }).min(32, {
        error: 'sso.requestBinding.secret must be at least 32 characters',
      }).optional(),
      cookieName: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).default('mno_sso_req'),
      /** How long an issued AuthnRequest stays acceptable. Default 10 min. */
      ttlMs: z.number().int().min(10_000).max(3_600_000).default(600_000),
      /** `auto` (default): `Secure; SameSite=None` on https consume URLs, no SameSite on http. */
      secure: z.union([z.literal('auto'), z.boolean()]).default('auto'),
    })
    .prefault({}),
  /** How long a provisioning claim blocks concurrent logins when its owner dies. Default 30 s. */
  provisioningClaimTtlMs: z.number().int().min(1_000).max(600_000).default(30_000),
  onError: fn<SsoErrorRenderer>('sso.onError').optional(),
});

export const MaestranoConfigSchema = strictObject({
  tenants: tenantsSchema,
  storage: storageSchema,
  provisioning: provisioningSchema,
  onLogin: fn<OnLogin>('onLogin'),
  sso: ssoSchema.prefault({}),
  logger: loggerSchema.optional(),
  fetch: fn<typeof fetch>('fetch').optional(),
  clock: fn<() => Date>('clock').optional(),
  /** Unique per process; default a random id. */
  instanceId: z.string().min(1).max(200).optional(),
  limits: strictObject({
      /** Request body limit of every route; larger bodies get 413. Default 1 MiB. */
      maxBodyBytes: z.number().int().positive().default(DEFAULT_MAX_BODY_BYTES),
      /**
       * Body limit of the Connec! notification route (authenticated before its body is read;
       * a notification refused as too large is not one Connec! could send smaller). Default 16 MiB.
       */
      maxNotificationBodyBytes: z.number().int().positive().default(DEFAULT_MAX_NOTIFICATION_BODY_BYTES),
      /**
       * Body read deadline (408 past it): on routes anyone may call, for the whole body; on
       * Maestrano's (credentials checked first), for each pause between two chunks. Default
       * 30 s; 1 s to 1 h.
       */
      bodyReadTimeoutMs: z.number().int().min(1_000).max(3_600_000).default(DEFAULT_BODY_READ_TIMEOUT_MS),
    })
    .prefault({}),
  /** Typed here for users; validated strictly by the account/billing module (`parseBillingConfig`). */
  billing: z.custom<BillingConfigInput>(() => true).optional(),
  /** `defineConnector(...)`. Typed here for users; validated by the sync module. */
  connector: z.custom<ConnectorDefinition>(() => true).optional(),
  /** Sync engine options. Typed here for users; validated strictly by the sync module (`parseSyncConfig`). */
  sync: z.custom<SyncModuleConfig>(() => true).optional(),
});

/** What a user passes to `createMaestrano` (defaults optional). */
export type MaestranoConfigInput = z.input<typeof MaestranoConfigSchema>;
/** The validated configuration with defaults filled (internal). */
export type ResolvedConfig = z.output<typeof MaestranoConfigSchema>;
export type SsoOptions = ResolvedConfig['sso'];

/**
 * Validates the top-level configuration and, when `tenants` is a list of marketplace objects,
 * every marketplace in it (schema, certificates, duplicate names). One `ConfigError` lists every
 * problem of both, never a secret value. `tenants` is the resolved list (null for a registry).
 */
export function parseMaestranoConfigAndTenants(input: unknown): { config: ResolvedConfig; tenants: Tenant[] | null } {
  const parsed = MaestranoConfigSchema.safeParse(input, CONFIG_PARSE_OPTIONS);
  const issues: ConfigIssue[] = parsed.success ? [] : configIssues(parsed.error, '');
  const list = typeof input === 'object' && input !== null ? (input as { tenants?: unknown }).tenants : undefined;
  let tenants: Tenant[] | null = null;
  if (Array.isArray(list)) {
    // A fixed empty list would serve a 404 on every route for the life of the process.
    if (list.length === 0) issues.push({ path: 'tenants', message: 'must list at least one marketplace' });
    if (list.length > 0 && list.every(isResolvedTenant)) {
      // `tenants: parseMarketplacesDocument(doc, …)`: one issue saying what to pass instead.
      issues.push({
        path: 'tenants',
        message:
          'is a list of already-resolved Tenant objects (as returned by parseMarketplacesDocument or resolveTenants), not marketplace objects: pass tenants: staticTenants(list) instead (or the registry tenantsFromFile / tenantsFromDevPlatform returns)',
      });
    } else {
      const resolved = tenantsOrIssues(list, 'tenants');
      issues.push(...resolved.issues);
      tenants = resolved.tenants;
    }
  }
  if (!parsed.success || issues.length > 0) throw configErrorOf('Maestrano configuration', issues);
  return { config: parsed.data, tenants };
}

/** Validates the configuration (the marketplaces of a `tenants` list included); `ConfigError` names every bad key, never a secret value. */
export function parseMaestranoConfig(input: unknown): ResolvedConfig {
  return parseMaestranoConfigAndTenants(input).config;
}
