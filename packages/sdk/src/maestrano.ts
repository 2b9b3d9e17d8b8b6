import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { type JobHandler, JobTypes, type ModuleContribution, type RouteKind, type RouteTable, type Runtime, type Tenant, type TenantRegistry } from './core/types.js';
import { ConfigError } from './errors/index.js';
import { consoleLogger, redactingLogger } from './config/logger.js';
import { type MaestranoConfigInput, parseMaestranoConfigAndTenants, type ResolvedConfig } from './config/schema.js';
import { SHARED_IDP_CERTIFICATE_WARNING, sharedIdpCertificates } from './config/tenant.js';
import { createRouter } from './http/router.js';
import { createHealthCheck, type HealthOptions, type HealthReport } from './health.js';
import { createSsoModule, type SsoApi } from './sso/module.js';
import { type AccountModule, type BillingApi, createAccountModule } from './billing/module.js';
import { isTenantRegistry, staticTenants } from './tenants/registry.js';
import { createWorker, type Worker } from './worker/index.js';
import { createSyncModule, type SyncApi, type SyncModule } from './sync/module.js';
import type { AnyEntity, ConnectorDefinition } from './entities/types.js';

/**
 * What `createMaestrano` returns. `E` is the connector's entities (inferred from
 * `defineConnector`), which types the names and records `sync.push` and `sync.pushMany` take;
 * `Maestrano` without arguments is any configuration (any entity name, any record).
 */
export interface Maestrano<E extends readonly AnyEntity[] = readonly AnyEntity[]> {
  /** Serves every Maestrano route of every tenant: `(Request) => Promise<Response>`. */
  handler: (request: Request) => Promise<Response>;
  tenants: TenantRegistry;
  sso: SsoApi;
  /** The Account API client of one tenant: groups, users, bills, recurring bills. */
  account: AccountModule['account'];
  /** Exactly-once charges (`charge`), bills and recurring bills per tenant, subscription set-up. */
  billing: BillingApi;
  /** Connector sync: `push`/`pushMany`, `importGroup`, `purgeGroup`, `deadLetters`, counters and events. */
  sync: SyncApi<E>;
  /** The typed Connec! client of a tenant's group: `mno.connec(tenant, groupId).people.list()`. */
  connec: SyncModule['connec'];
  /** Job handlers of every module by job type (what the worker runs). */
  jobs: Readonly<Record<string, JobHandler>>;
  /**
   * Runs the durable jobs (company set-up, billing, imports, notifications, polls, purges):
   * `mno.worker.run({ signal, concurrency })` in any number of processes.
   */
  worker: Worker;
  /**
   * Readiness: probes storage through the contract (a lookup in each repository, a lock taken
   * and released) and answers a JSON-ready report, never throwing for a storage failure:
   * `const report = await mno.health(); return Response.json(report, { status: report.ok ? 200 : 503 })`.
   */
  health: (options?: HealthOptions) => Promise<HealthReport>;
  /** The runtime the modules were built from (storage, logger, clock, tenants). */
  runtime: Runtime;
}

/**
 * Merges module contributions. Two modules claiming one route kind or one job type is a
 * programming error (`ConfigError`), never a silent override.
 */
export function mergeContributions(modules: Record<string, ModuleContribution>): {
  routes: RouteTable;
  jobs: Record<string, JobHandler>;
} {
  const routes: RouteTable = {};
  const jobs: Record<string, JobHandler> = {};
  const routeOwner = new Map<RouteKind, string>();
  const jobOwner = new Map<string, string>();
  for (const [name, contribution] of Object.entries(modules)) {
    for (const [kind, handler] of Object.entries(contribution.routes ?? {}) as [RouteKind, RouteTable[RouteKind]][]) {
      if (!handler) continue;
      const other = routeOwner.get(kind);
      if (other) throw new ConfigError(`Route ${kind} is registered by both the ${other} and ${name} modules`);
      routeOwner.set(kind, name);
      routes[kind] = handler;
    }
    for (const [type, handler] of Object.entries(contribution.jobs ?? {})) {
      const other = jobOwner.get(type);
      if (other) throw new ConfigError(`Job type ${type} is handled by both the ${other} and ${name} modules`);
      jobOwner.set(type, name);
      jobs[type] = handler;
    }
  }
  return { routes, jobs };
}

/** Job types that follow a group deletion when a module handles them (enqueued by the webhook). */
const GROUP_CANCELLED_FOLLOW_UPS: readonly string[] = [JobTypes.syncPurge];

/** `resolved`: the validated tenants of a `tenants` list (null when `tenants` is a registry). */
function buildRuntime(config: ResolvedConfig, resolved: Tenant[] | null): Runtime {
  const tenants = isTenantRegistry(config.tenants) ? config.tenants : staticTenants(resolved ?? []);
  return {
    tenants,
    storage: config.storage,
    logger: redactingLogger(config.logger ?? consoleLogger()),
    clock: config.clock ?? (() => new Date()),
    instanceId: config.instanceId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    fetch: config.fetch ?? globalThis.fetch.bind(globalThis),
  };
}

/**
 * Builds the SDK from one configuration (validated with strict schemas: a typo or a bad
 * value is a `ConfigError` naming the key, never echoing a secret). Each module gets the
 * shared `Runtime` and contributes routes and job handlers.
 */
export function createMaestrano<E extends readonly AnyEntity[] = readonly AnyEntity[]>(
  input: MaestranoConfigInput & { connector?: ConnectorDefinition<E> | undefined },
): Maestrano<E> {
  // One ConfigError lists every problem: top-level keys and each marketplace of a tenants list.
  const { config, tenants } = parseMaestranoConfigAndTenants(input);
  const runtime = buildRuntime(config, tenants);
  // What `defineConnector` found suspicious but accepted (a path the catalog does not list).
  for (const warning of new Set(config.connector?.warnings ?? [])) runtime.logger.warn('maestrano: connector definition', { warning });
  // A registry (the developer platform) warns again when a refresh brings a new pair.
  for (const shared of sharedIdpCertificates(runtime.tenants.list())) runtime.logger.warn(SHARED_IDP_CERTIFICATE_WARNING, shared);

  const sso = createSsoModule(runtime, config);
  // Further modules plug in here: build from (runtime, config), add to `modules`, expose the API below.
  const sync = createSyncModule(runtime, { connector: config.connector, sync: config.sync });
  // What a group deletion sets off besides the account module's own work: the follow-ups some
  // module handles (`sync.purge` is handled only with a connector), as for `company.created`.
  const groupCancelledJobs = GROUP_CANCELLED_FOLLOW_UPS.filter((t) => sync.jobs?.[t] !== undefined);
  const account = createAccountModule(runtime, { billing: config.billing, hooks: config.provisioning, groupCancelledJobs });
  const modules: Record<string, ModuleContribution> = {
    sso,
    account: account.contribution,
    sync: { ...(sync.routes ? { routes: sync.routes } : {}), ...(sync.jobs ? { jobs: sync.jobs } : {}) },
  };

  const { routes, jobs } = mergeContributions(modules);
  const handler = createRouter({
    tenants: runtime.tenants,
    routes,
    maxBodyBytes: config.limits.maxBodyBytes,
    maxBodyBytesFor: { connecNotification: config.limits.maxNotificationBodyBytes },
    bodyReadTimeoutMs: config.limits.bodyReadTimeoutMs,
    logger: runtime.logger,
    // A browser on an SSO link naming a marketplace that is gone gets the app's error page.
    unknownTenant: (kind, request) => (kind === 'ssoInit' || kind === 'ssoConsume' ? sso.renderUnknownTenant(request) : null),
  });

  return {
    handler,
    tenants: runtime.tenants,
    sso: sso.api,
    account: account.account,
    billing: account.billing,
    // The module checks names and entity objects at run time; `E` only narrows what compiles.
    sync: sync.api as SyncApi<E>,
    connec: sync.connec,
    jobs,
    worker: createWorker(runtime, jobs),
    health: createHealthCheck(runtime),
    runtime,
  };
}
