import type { Logger, RouteKind, RouteTable, Tenant, TenantRegistry } from '../core/types.js';
import { isMaestranoError, PayloadValidationError, SsoError, WebhookError } from '../errors/index.js';
import { invalidCredentialsResponse, parseBasicAuth, safeEqual, verifyTenantBasicAuth } from '../webhooks/auth.js';
import { BodyReadTimeoutError, BodyTooLargeError, DEFAULT_BODY_READ_TIMEOUT_MS, readLimitedBody, withBufferedBody } from './body.js';
import { thrownText, trimTrailingSlashes } from '../internal/text.js';
import { DEFAULT_PATHS } from '../config/tenant.js';
import { stepField } from '../internal/failed-step.js';

/** Fixed paths (without the tenant segment) of the routes whose path is not configurable. */
export const FIXED_PATHS = {
  metadata: '/maestrano/metadata',
  samlMetadata: '/maestrano/auth/saml/metadata',
  // The Rails connector's spelling, which the platform calls (PROTOCOL §5.4).
  connectorDependencies: '/maestrano/dependancies',
  connectorVersion: '/version',
} as const;

/**
 * Default paths of the connector control endpoints (PROTOCOL §5.4), the Rails connector's
 * routes; `:tenant` is the tenant's name, `:group_id` the group.
 */
export const SYNC_CONTROL_PATHS = {
  start: '/maestrano/:tenant/synchronizations',
  toggle: '/maestrano/:tenant/synchronizations/toggle_sync',
  status: '/maestrano/:tenant/synchronizations/:group_id',
} as const;

/**
 * Route kinds served only when a module handles them (the connector control endpoints: with
 * a connector). Without a handler they are not routes at all, so their paths answer as any
 * unknown path. They have no legacy tenant-suffixed alias either (no URL was ever handed out).
 */
const OPTIONAL_KINDS: ReadonlySet<RouteKind> = new Set(['syncStart', 'syncStatus', 'syncToggle', 'syncUpdateMetadata', 'connectorDependencies', 'connectorVersion']);

export const ROUTE_METHODS: Record<RouteKind, string> = {
  metadata: 'GET',
  samlMetadata: 'GET',
  ssoInit: 'GET',
  ssoConsume: 'POST',
  groupDeleted: 'DELETE',
  groupUserDeleted: 'DELETE',
  connecNotification: 'POST',
  syncStart: 'POST',
  syncStatus: 'GET',
  syncToggle: 'PUT',
  syncUpdateMetadata: 'PUT',
  connectorDependencies: 'GET',
  connectorVersion: 'GET',
};

/** Routes Maestrano authenticates with the tenant's `api.id:api.key` (PROTOCOL §5.3, §5.4, §6.12). */
const BASIC_AUTH_KINDS: ReadonlySet<RouteKind> = new Set([
  'groupDeleted',
  'groupUserDeleted',
  'connecNotification',
  'syncStart',
  'syncStatus',
  'syncToggle',
  'syncUpdateMetadata',
  'connectorDependencies',
  'connectorVersion',
]);

/**
 * How a route names its tenant, in the order the router tries them (most specific first):
 * 1. `suffix`: the last segment is the tenant's name;
 * 2. `query`: the configured path carries a query (`?marketplace=<name>`) the request must repeat;
 * 3. `bare`: neither; the tenant is the only one configuring that path, else (several
 *    tenants) the one whose API credentials the request carries (Basic-auth routes only).
 */
type TenantCarrier = 'suffix' | 'query' | 'bare';
const CARRIER_RANK: Record<TenantCarrier, number> = { suffix: 0, query: 1, bare: 2 };

interface CompiledRoute {
  kind: RouteKind;
  method: string;
  /** Literal segments, or `{ param }` for `:name` segments. */
  segments: (string | { param: string })[];
  /** Query parameters the request must carry with these values (from the configured path). */
  query: [string, string][];
  carrier: TenantCarrier;
  /** The configured path this route serves (for logs). */
  path: string;
  /**
   * A protocol-default path served without the tenant suffix for a tenant that configured none
   * (PROTOCOL §1.2, §1.5): not something the tenant configured, so never warned about.
   */
  defaultAlias?: true;
}

/**
 * The protocol default (without a tenant) of each route kind Maestrano calls at a URL
 * registered on its side: a tenant that configured none of these paths serves
 * `<default>/<tenant>`, and also the default itself (maestrano-rails serves every route with
 * and without `:tenant`, PROTOCOL §1.5; the README lists these defaults). Several tenants on
 * one default path are told apart as on any shared path: by the Basic credentials for webhooks
 * (else 404 `ambiguous_tenant`). The consume path is not among them: the SDK sends its ACS URL
 * in every AuthnRequest, and the IdP posts there.
 */
const DEFAULT_ALIASES: Partial<Record<RouteKind, string>> = {
  ssoInit: DEFAULT_PATHS.initPath,
  groupDeleted: DEFAULT_PATHS.groupPath,
  groupUserDeleted: DEFAULT_PATHS.groupUserPath,
  connecNotification: DEFAULT_PATHS.notificationPath,
};

/**
 * The path of `update_metadata`, which the developer platform does not configure: beside the
 * configured toggle path (`…/toggle_sync` -> `…/update_metadata`), else under the start path.
 */
function updateMetadataPath(start: string, toggle: string): string {
  const [path, query] = splitQuery(toggle);
  if (/\/toggle_sync\/?$/.test(path)) return `${path.replace(/toggle_sync\/?$/, 'update_metadata')}${query}`;
  return under(start, 'update_metadata');
}

/** `segment` appended to `path` (before its query, when it has one). */
function under(path: string, segment: string): string {
  const [pathname, query] = splitQuery(path);
  return `${trimTrailingSlashes(pathname)}/${segment}${query}`;
}

function splitQuery(path: string): [string, string] {
  const q = path.indexOf('?');
  return q < 0 ? [path, ''] : [path.slice(0, q), path.slice(q)];
}

/** The absolute path (query included, when configured with one) of each route kind for one tenant. */
export function routePaths(tenant: Tenant): Record<RouteKind, string> {
  const sync = tenant.app.synchronization ?? {};
  const start = sync.startPath ?? SYNC_CONTROL_PATHS.start;
  const toggle = sync.togglePath ?? (sync.startPath ? under(sync.startPath, 'toggle_sync') : SYNC_CONTROL_PATHS.toggle);
  const status = sync.statusPath ?? (sync.startPath ? under(sync.startPath, ':group_id') : SYNC_CONTROL_PATHS.status);
  return {
    metadata: `${FIXED_PATHS.metadata}/${tenant.name}`,
    samlMetadata: `${FIXED_PATHS.samlMetadata}/${tenant.name}`,
    ssoInit: tenant.sso.initPath,
    ssoConsume: tenant.sso.consumePath,
    groupDeleted: tenant.webhooks.account.groupPath,
    groupUserDeleted: tenant.webhooks.account.groupUserPath,
    connecNotification: tenant.webhooks.connec.notificationPath,
    syncStart: start,
    syncStatus: status,
    syncToggle: toggle,
    syncUpdateMetadata: updateMetadataPath(start, toggle),
    connectorDependencies: FIXED_PATHS.connectorDependencies,
    connectorVersion: FIXED_PATHS.connectorVersion,
  };
}

function splitPath(path: string): string[] {
  return path.split('/').filter((s) => s.length > 0);
}

/**
 * One configured path as routes: the path as written (Maestrano calls exactly that), and, when
 * its last segment is not the tenant's name, the same path with the name appended (what the
 * SDK served for such a path before it served them as written, kept so that no URL an app
 * already handed out stops working; not for the optional kinds, which never had such URLs). A
 * `:tenant` segment stands for the tenant's name.
 */
function compilePath(tenant: Tenant, kind: RouteKind, path: string): CompiledRoute[] {
  const target = path.split('#')[0]!;
  const q = target.indexOf('?');
  const pathname = q < 0 ? target : target.slice(0, q);
  const search = q < 0 ? '' : target.slice(q + 1);
  const segments = splitPath(pathname).map((s) => (s === ':tenant' ? tenant.name : s.startsWith(':') ? { param: s.slice(1) } : s));
  const query = [...new URLSearchParams(search)];
  const method = ROUTE_METHODS[kind];
  const suffixed = segments.at(-1) === tenant.name;
  const routes: CompiledRoute[] = [{ kind, method, segments, query, carrier: suffixed ? 'suffix' : query.length > 0 ? 'query' : 'bare', path }];
  if (!suffixed && !OPTIONAL_KINDS.has(kind)) routes.push({ kind, method, segments: [...segments, tenant.name], query: [], carrier: 'suffix', path });
  // The path left to its default (`<default>/<tenant>`): the bare default is served too.
  const fallback = DEFAULT_ALIASES[kind];
  if (fallback !== undefined && path === `${fallback}/${tenant.name}`) {
    routes.push({ kind, method, segments: segments.slice(0, -1), query: [], carrier: 'bare', path: fallback, defaultAlias: true });
  }
  return routes;
}

function compile(tenant: Tenant, handled: RouteTable): CompiledRoute[] {
  const paths = routePaths(tenant);
  const primary: CompiledRoute[] = [];
  const aliases: CompiledRoute[] = [];
  for (const kind of Object.keys(paths) as RouteKind[]) {
    if (OPTIONAL_KINDS.has(kind) && !handled[kind]) continue;
    const [asWritten, ...alias] = compilePath(tenant, kind, paths[kind]);
    primary.push(asWritten!);
    aliases.push(...alias);
  }
  return [...primary, ...aliases];
}

function match(route: CompiledRoute, segments: string[], search: URLSearchParams): Record<string, string> | null {
  if (route.segments.length !== segments.length) return null;
  for (const [key, value] of route.query) {
    if (!search.getAll(key).includes(value)) return null;
  }
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const expected = route.segments[i]!;
    const actual = segments[i]!;
    if (typeof expected === 'string') {
      if (expected !== actual) return null;
    } else {
      let value: string;
      try {
        value = decodeURIComponent(actual);
      } catch {
        return null;
      }
      // Control characters (NUL above all: PostgreSQL text refuses it) are never an id.
      if (value.length === 0 || [...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) return null;
      params[expected.param] = value;
    }
  }
  return params;
}

/** Whether `route` serves a request with `method` (HEAD is served by GET routes). */
function accepts(route: CompiledRoute, method: string): boolean {
  const m = method.toUpperCase();
  return route.method === m || (m === 'HEAD' && route.method === 'GET');
}

/** A route shape independent of parameter names: two tenants configuring it serve one URL set. */
function shapeOf(route: CompiledRoute): string {
  const path = route.segments.map((s) => (typeof s === 'string' ? s : ':')).join('/');
  const query = route.query.map(([k, v]) => `${k}=${v}`).sort().join('&');
  return `${route.method} /${path}${query ? `?${query}` : ''}`;
}

/** A JSON answer of a Maestrano route: never cached. */
export function json(status: number, body: object, headers: Record<string, string> = {}): Response {
  return Response.json(body, { status, headers: { 'cache-control': 'no-store', ...headers } });
}

const AMBIGUOUS = {
  error: 'ambiguous_tenant',
  message: 'Several marketplaces are configured with this path and the request does not say which one it is for',
};

export interface RouterOptions {
  tenants: TenantRegistry;
  routes: RouteTable;
  maxBodyBytes: number;
  /** Per-route body limits replacing `maxBodyBytes` (routes read their body after authentication). */
  maxBodyBytesFor?: Partial<Record<RouteKind, number>>;
  /**
   * How long a route waits for the whole body once it starts reading it; past it, 408 (the
   * stream is cancelled, nothing received is kept). Default `DEFAULT_BODY_READ_TIMEOUT_MS` (30 s).
   */
  bodyReadTimeoutMs?: number;
  logger: Logger;
  /**
   * A request whose last segment names no known tenant on a path shaped like one of `kind`'s
   * tenant-suffixed routes (a stale link with an old marketplace name): the answer, or null
   * for the default 404 `unknown_tenant` JSON. The SSO module renders `sso.onError` here.
   */
  unknownTenant?: (kind: RouteKind, request: Request) => Promise<Response | null> | Response | null;
}

interface Candidate {
  tenant: Tenant;
  route: CompiledRoute;
  params: Record<string, string>;
}

/**
 * The tenants whose `api.id:api.key` the request carries. Every candidate is compared, each
 * in constant time and with no early exit, so timing does not tell which one matched.
 */
function byCredentials(request: Request, candidates: Candidate[]): Candidate[] {
  const creds = parseBasicAuth(request.headers.get('authorization'));
  if (!creds) return [];
  const hits: Candidate[] = [];
  for (const candidate of candidates) {
    const idOk = safeEqual(creds.username, candidate.tenant.api.id);
    const keyOk = safeEqual(creds.password, candidate.tenant.api.key);
    if (idOk && keyOk) hits.push(candidate);
  }
  return hits;
}

/**
 * Logs, once per tenant set, the paths several tenants configure without naming the tenant
 * (no tenant suffix, same query): SSO requests on them cannot be told apart (404
 * `ambiguous_tenant`); webhooks on them go to the tenant whose credentials they carry.
 */
function warnAmbiguous(tenants: Tenant[], routesOf: (tenant: Tenant) => CompiledRoute[], logger: Logger, warned: Set<string> = new Set()): void {
  const shared = new Map<string, { kinds: Set<RouteKind>; tenants: Tenant[]; path: string }>();
  for (const tenant of tenants) {
    for (const route of routesOf(tenant)) {
      if (route.carrier === 'suffix' || route.defaultAlias) continue;
      const key = shapeOf(route);
      const entry = shared.get(key) ?? { kinds: new Set<RouteKind>(), tenants: [], path: route.path };
      entry.kinds.add(route.kind);
      if (!entry.tenants.includes(tenant)) entry.tenants.push(tenant);
      shared.set(key, entry);
    }
  }
  for (const { kinds, tenants: owners, path } of shared.values()) {
    if (owners.length < 2) continue;
    const names = owners.map((t) => t.name);
    // Said once per path, kinds and tenants: a refresh that changes nothing here (new tenant
    // objects, same configuration) does not repeat it.
    const key = `${path}\u0000${[...kinds].sort().join(',')}\u0000${names.join(',')}`;
    if (warned.has(key)) continue;
    if ([...kinds].some((kind) => !BASIC_AUTH_KINDS.has(kind))) {
      warned.add(key);
      logger.warn(
        'maestrano: several marketplaces configure the same SSO path without naming the marketplace; requests on it are answered 404 ambiguous_tenant. Configure it with the marketplace as the last segment or as ?marketplace=<name>',
        { path, routes: [...kinds], tenants: names },
      );
      continue;
    }
    const ids = new Set(owners.map((t) => `${t.api.id}\u0000${t.api.key}`));
    if (ids.size < owners.length) {
      warned.add(key);
      logger.warn(
        'maestrano: several marketplaces configure the same webhook path without naming the marketplace and share API credentials; requests on it are answered 404 ambiguous_tenant',
        { path, routes: [...kinds], tenants: names },
      );
    }
  }
}

interface IndexEntry {
  tenant: Tenant;
  route: CompiledRoute;
  /** Position of the route among every route of every tenant (tenant order, then route order). */
  order: number;
}

/**
 * Every route of one tenant list, by the segment that tells it apart best: the last segment
 * holding its tenant's name when it has one (the default layout: one tenant's routes per
 * name), else its last literal segment. A request is tried only against the routes whose
 * segment at that position is the request's: a route the index leaves out has a literal the
 * request does not carry, which `match` refuses too.
 */
interface RouteIndex {
  /** `<segment count>/<position>` (position -1: no literal segment) -> that segment -> routes. */
  buckets: Map<string, Map<string, IndexEntry[]>>;
  /** The distinct positions of each segment count. */
  positions: Map<number, number[]>;
  /** The `query` routes of every tenant, by kind. */
  queryRoutes: Map<RouteKind, CompiledRoute[]>;
  /**
   * The `suffix` and `query` routes, the first of each shape in tenant and route order: what a
   * request naming an unknown tenant is compared with (the tenant's name as the last segment,
   * the query's keys whatever their values), the same for every route of one shape.
   */
  namingShapes: { tenant: Tenant; route: CompiledRoute }[];
}

function buildIndex(tenants: readonly Tenant[], routesOf: (tenant: Tenant) => CompiledRoute[]): RouteIndex {
  const index: RouteIndex = { buckets: new Map(), positions: new Map(), queryRoutes: new Map(), namingShapes: [] };
  const shapes = new Set<string>();
  let order = 0;
  for (const tenant of tenants) {
    for (const route of routesOf(tenant)) {
      if (route.carrier !== 'bare') {
        const segments = route.carrier === 'suffix' ? route.segments.slice(0, -1) : route.segments;
        const query = route.carrier === 'suffix' ? route.query : route.query.map(([k]) => [k]);
        const shape = JSON.stringify([route.carrier, route.kind, route.method, segments, query]);
        if (!shapes.has(shape)) {
          shapes.add(shape);
          index.namingShapes.push({ tenant, route });
        }
      }
      const { segments } = route;
      let at = -1;
      for (let i = segments.length - 1; i >= 0; i--) {
        if (segments[i] === tenant.name) {
          at = i;
          break;
        }
        if (at < 0 && typeof segments[i] === 'string') at = i;
      }
      const bucketKey = `${segments.length}/${at}`;
      let bucket = index.buckets.get(bucketKey);
      if (!bucket) {
        bucket = new Map();
        index.buckets.set(bucketKey, bucket);
        index.positions.set(segments.length, [...(index.positions.get(segments.length) ?? []), at]);
      }
      const literal = at < 0 ? '' : (segments[at] as string);
      const entries = bucket.get(literal) ?? [];
      entries.push({ tenant, route, order: order++ });
      bucket.set(literal, entries);
      if (route.carrier === 'query') {
        const same = index.queryRoutes.get(route.kind);
        if (same) same.push(route);
        else index.queryRoutes.set(route.kind, [route]);
      }
    }
  }
  return index;
}

/** The indexed routes that may match a request's path segments. */
function* lookup(index: RouteIndex, segments: readonly string[]): Generator<IndexEntry> {
  for (const at of index.positions.get(segments.length) ?? []) {
    const entries = index.buckets.get(`${segments.length}/${at}`)?.get(at < 0 ? '' : segments[at]!);
    if (entries) yield* entries;
  }
}

function sameTenants(a: readonly Tenant[], b: readonly Tenant[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i]);
}

/**
 * The framework-neutral handler behind `mno.handler`. Every path of every tenant is served
 * as configured (query included). The tenant of a request is, in order: the one named by the
 * last path segment, when the route matched is that tenant's; the one whose configured route
 * carries the request's query (`?marketplace=<name>`); the only tenant configuring a
 * tenant-less path; for a tenant-less path several tenants configure, the one whose API
 * credentials a Basic-auth route (webhooks) carries (else 404 `ambiguous_tenant`). No route
 * -> 404 JSON (`unknown_tenant` when the last segment names no tenant); wrong method -> 405;
 * body over the limit -> 413; body not received whole within `bodyReadTimeoutMs` -> 408; kind without a handler -> 404. Bodies are buffered (within the
 * limit) before the route handler runs, so handlers can read them freely. Errors never leak a
 * stack trace: typed errors map to 4xx, anything else to a logged 500.
 */
export function createRouter(options: RouterOptions): (request: Request) => Promise<Response> {
  const compiled = new WeakMap<Tenant, CompiledRoute[]>();
  const routesOf = (tenant: Tenant): CompiledRoute[] => {
    let routes = compiled.get(tenant);
    if (!routes) {
      routes = compile(tenant, options.routes);
      compiled.set(tenant, routes);
    }
    return routes;
  };
  // A copy of the list read last, never the registry's own array: a registry may hand out the
  // one array it adds tenants to (or replaces them in), which compared with itself would never
  // look changed, and the index would keep routing the tenants it was built from.
  let known: Tenant[] = [...options.tenants.list()];
  const warned = new Set<string>();
  warnAmbiguous(known, routesOf, options.logger, warned);
  const refusals = refusalLog(options.logger);
  /** The routes of the current tenant list, indexed (rebuilt when the list changes). */
  let index: RouteIndex | null = null;
  const currentTenants = (): Tenant[] => {
    const list = options.tenants.list();
    if (!sameTenants(list, known)) {
      known = [...list];
      index = null;
      warnAmbiguous(list, routesOf, options.logger, warned);
    }
    return list;
  };
  const currentIndex = (): RouteIndex => {
    const list = currentTenants();
    index ??= buildIndex(list, routesOf);
    return index;
  };
  /**
   * The kind of route the request would match if it named a known tenant: with that tenant's
   * name as the last segment, or with other values of a route's tenant query (`?marketplace=`).
   */
  const kindNamingUnknownTenant = (segments: string[], search: URLSearchParams, method: string): RouteKind | null => {
    // The routes of one shape answer alike whichever tenant's they are: each shape is tried once.
    for (const { tenant, route } of currentIndex().namingShapes) {
      if (!accepts(route, method)) continue;
      if (route.carrier === 'suffix' && match(route, [...segments.slice(0, -1), tenant.name], search)) return route.kind;
      if (route.carrier === 'query' && route.query.every(([k]) => search.has(k)) && match({ ...route, query: [] }, segments, search)) {
        return route.kind;
      }
    }
    return null;
  };

  return async (request: Request): Promise<Response> => {
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return json(400, { error: 'bad_request', message: 'Invalid request URL' });
    }
    const segments = splitPath(url.pathname);

    // Only the routes whose selecting literal segment is the request's are tried (the index),
    // not every route of every tenant: the cost of a request does not grow with the tenants.
    const routing = currentIndex();
    const matched: Candidate[] = [];
    const order = new Map<Candidate, number>();
    for (const entry of lookup(routing, segments)) {
      const params = match(entry.route, segments, url.searchParams);
      if (!params) continue;
      const candidate = { tenant: entry.tenant, route: entry.route, params };
      order.set(candidate, entry.order);
      matched.push(candidate);
    }
    // In tenant order, then each tenant's route order (what the first route of a tenant means).
    matched.sort((a, b) => order.get(a)! - order.get(b)!);
    // A query route matches as a subset of the request's query: `?route=init` also matches
    // `?route=init&marketplace=acme-old`. When another marketplace's route of the same kind names
    // its tenant through a query key the request carries (`marketplace`), with a value no route
    // accepts (a stale or mistyped name), the request names an unknown marketplace: it is not
    // served as the marketplace of the shorter route (unless the value is that one's name). The
    // query routes of every tenant are read once per request, and only when a query or bare
    // route matched (never on the dev platform's suffix layout).
    const candidates = matched.filter(({ tenant, route }) => {
      if (route.carrier === 'suffix') return true;
      return !(routing.queryRoutes.get(route.kind) ?? []).some(
        (longer) =>
          longer.carrier === 'query' &&
          longer.kind === route.kind &&
          longer.query.length > route.query.length &&
          route.query.every(([k, v]) => longer.query.some(([lk, lv]) => lk === k && lv === v)) &&
          longer.query.every(([k]) => url.searchParams.has(k)) &&
          longer.query.some(([k]) => !route.query.some(([rk]) => rk === k) && !url.searchParams.getAll(k).includes(tenant.name)) &&
          match({ ...longer, query: [] }, segments, url.searchParams) !== null &&
          !matched.some((c) => c.route === longer),
      );
    });
    if (candidates.length === 0) {
      const last = segments.at(-1);
      let tenantName: string | undefined;
      try {
        tenantName = last === undefined ? undefined : decodeURIComponent(last);
      } catch {
        tenantName = undefined;
      }
      if (tenantName === undefined || !options.tenants.get(tenantName)) {
        const kind = kindNamingUnknownTenant(segments, url.searchParams, request.method);
        let rendered: Response | null | undefined = null;
        try {
          rendered = kind && options.unknownTenant ? await options.unknownTenant(kind, request) : null;
        } catch (error) {
          return errorResponse(error, options.logger, { tenant: null, route: kind });
        }
        if (rendered) return rendered;
        // One of the SDK's routes, for a marketplace this process does not serve (a stale
        // link, a name misspelt in the platform's settings): said in the log, as every refusal
        // is, with the marketplaces it does serve. (A path that is no route stays silent.)
        if (kind) {
          const served = options.tenants.list().map((t) => t.name);
          options.logger.warn('maestrano: request for a marketplace this app does not serve', {
            route: kind,
            method: request.method,
            path: url.pathname,
            tenants: served.length > 20 ? [...served.slice(0, 20), `… ${served.length - 20} more`] : served,
          });
        }
        return json(404, { error: 'unknown_tenant', message: 'Unknown tenant' });
      }
      return json(404, { error: 'not_found', message: 'Not found' });
    }

    const method = request.method.toUpperCase();
    const allowed = candidates.filter(({ route }) => accepts(route, method));
    if (allowed.length === 0) {
      await request.body?.cancel().catch(() => {});
      const methods = [...new Set(candidates.map(({ route }) => route.method))];
      return json(405, { error: 'method_not_allowed', message: 'Method not allowed' }, { allow: methods.join(', ') });
    }
    // The most specific way of naming the tenant wins; then the first route of each tenant.
    const rank = Math.min(...allowed.map(({ route }) => CARRIER_RANK[route.carrier]));
    const sameRank = allowed.filter(({ route }) => CARRIER_RANK[route.carrier] === rank);
    // A path a marketplace configured wins over another's unconfigured default served bare.
    const ranked = sameRank.some(({ route }) => !route.defaultAlias) ? sameRank.filter(({ route }) => !route.defaultAlias) : sameRank;
    // A route's query matches as a subset of the request's, so among those the route naming more
    // query parameters is the more specific one: `?route=init&marketplace=acme` over `?route=init`
    // (without this, every request for the first answered 404 ambiguous_tenant).
    const most = Math.max(...ranked.map(({ route }) => route.query.length));
    const perTenant = new Map<Tenant, Candidate>();
    for (const candidate of ranked) {
      if (candidate.route.query.length === most && !perTenant.has(candidate.tenant)) perTenant.set(candidate.tenant, candidate);
    }
    let found = [...perTenant.values()];
    if (found.length > 1) {
      // The body is dropped only when no handler will run: on a path several marketplaces
      // share, the credentials pick the tenant and its handler still reads the body.
      const refuse = async (response: Response) => {
        await request.body?.cancel().catch(() => {});
        return response;
      };
      if (!found.every(({ route }) => BASIC_AUTH_KINDS.has(route.kind))) return refuse(json(404, AMBIGUOUS));
      const named = found;
      found = byCredentials(request, found);
      if (found.length === 0) {
        refusals.refused(request, null, named[0]!.route.kind, named.map((c) => c.tenant));
        return refuse(invalidCredentialsResponse());
      }
      if (found.length > 1) return refuse(json(404, AMBIGUOUS));
    }
    const { tenant, route, params } = found[0]!;
    const handler = options.routes[route.kind];
    if (!handler) return json(404, { error: 'not_found', message: 'Not found' });
    // Routes Maestrano calls with the tenant's Basic credentials: refused before the body is
    // read, so an unauthenticated caller cannot make the process buffer a body at all.
    if (BASIC_AUTH_KINDS.has(route.kind) && !verifyTenantBasicAuth(request, tenant)) {
      refusals.refused(request, tenant, route.kind, [tenant]);
      await request.body?.cancel().catch(() => {});
      return invalidCredentialsResponse();
    }

    if (request.bodyUsed) {
      // The app's set-up, not the caller's fault: a 4xx would tell Maestrano the request was
      // bad (Connec! does not send a refused notification again), so a 500 that says the fix.
      options.logger.error('maestrano: the request body was read before mno.handler; mount the Maestrano routes before body-parsing middleware', {
        tenant: tenant.name,
        route: route.kind,
      });
      return json(500, { error: 'body_consumed', message: BODY_CONSUMED_MESSAGE });
    }
    let buffered: Request;
    try {
      const limit = options.maxBodyBytesFor?.[route.kind] ?? options.maxBodyBytes;
      // Maestrano's own calls (authenticated above) may be large: only a pause cuts them.
      const idle = BASIC_AUTH_KINDS.has(route.kind);
      buffered = withBufferedBody(request, await readLimitedBody(request, limit, options.bodyReadTimeoutMs ?? DEFAULT_BODY_READ_TIMEOUT_MS, idle));
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        return json(413, { error: 'payload_too_large', message: `Request body exceeds ${error.limit} bytes` });
      }
      if (error instanceof BodyReadTimeoutError) {
        options.logger.warn('maestrano: a request body was not received in time (408)', {
          tenant: tenant.name,
          route: route.kind,
          timeoutMs: error.timeoutMs,
          idle: error.idle,
        });
        return json(408, { error: 'request_timeout', message: error.message });
      }
      options.logger.warn('maestrano: could not read a request body', {
        tenant: tenant.name,
        route: route.kind,
        error: error instanceof Error ? error.message : String(error),
      });
      return json(400, { error: 'bad_request', message: 'Could not read the request body' });
    }

    try {
      const response = await handler({ request: buffered, tenant, params });
      // The SSO metadata route checks the same credentials itself.
      if (response.status === 401 && route.kind === 'metadata') refusals.refused(request, tenant, route.kind, [tenant]);
      return response;
    } catch (error) {
      return errorResponse(error, options.logger, { tenant: tenant.name, route: route.kind });
    }
  };
}

const BODY_CONSUMED_MESSAGE =
  'The request body was already read by middleware that ran before the Maestrano handler (a body parser?), and could not be rebuilt: mount the Maestrano routes (mno.handler, or toNodeListener(mno.handler) under Express) before body parsers';

/** At most one log line per tenant, route and reason in this period about refused credentials. */
const REFUSAL_LOG_PERIOD_MS = 60_000;
/** Entries of the refusal log at which it first sweeps out those past their period. */
const REFUSAL_LOG_SWEEP_SIZE = 1_000;

/**
 * Logs requests refused for their Basic credentials (a 401 is seen only by the caller: after a
 * key rotation, Maestrano's webhooks would fail unnoticed), at most once a minute per tenant,
 * route and reason so that a scanner cannot flood the log. Never the credentials: only whether the
 * id sent is the marketplace's `api.id` (so a wrong key tells apart from a wrong id). On a path
 * several marketplaces share (`tenant` null), the marketplace is the one candidate whose `api.id`
 * the request carries, when exactly one does; else `*` (logged as null, with the candidates).
 */
function refusalLog(logger: Logger) {
  const last = new Map<string, number>();
  /**
   * The size at which entries past their period are swept out. Not a cap that forgets every
   * entry (with hundreds of marketplaces, a scanner reaching each one's routes would otherwise
   * empty the map within the minute and be logged on every request): the keys are bounded by
   * the tenants, route kinds and reasons, and a sweep keeps only those of the last minute.
   */
  let sweepAt = REFUSAL_LOG_SWEEP_SIZE;
  return {
    refused(request: Request, routeTenant: Tenant | null, kind: RouteKind, candidates: Tenant[]): void {
      const creds = parseBasicAuth(request.headers.get('authorization'));
      // Every candidate is compared, in constant time, with no early exit.
      const byId = creds === null ? [] : candidates.filter((t) => safeEqual(creds.username, t.api.id));
      const tenant = routeTenant ?? (byId.length === 1 ? byId[0]! : null);
      const reason = creds === null ? 'no credentials sent' : byId.length > 0 ? 'wrong api.key' : 'unknown api.id';
      // Per reason too: a scanner's bare requests must not hide Maestrano's stale key.
      const key = `${tenant?.name ?? '*'}:${kind}:${reason}`;
      const now = Date.now();
      const before = last.get(key);
      if (before !== undefined && now - before < REFUSAL_LOG_PERIOD_MS) return;
      if (last.size >= sweepAt) {
        for (const [seen, at] of last) {
          if (!(now - at < REFUSAL_LOG_PERIOD_MS)) last.delete(seen);
        }
        // Swept again once it has doubled: each sweep costs as much as the entries added since.
        sweepAt = Math.max(REFUSAL_LOG_SWEEP_SIZE, last.size * 2);
      }
      last.set(key, now);
      logger.warn("maestrano: request refused (401): its Basic credentials are not the marketplace's api.id/api.key", {
        tenant: tenant?.name ?? null,
        route: kind,
        refused: reason,
        ...(tenant === null && candidates.length > 1 ? { tenants: candidates.map((t) => t.name) } : {}),
      });
    },
  };
}

/** Maps an error thrown by a route handler to a safe JSON response. */
export function errorResponse(error: unknown, logger: Logger, fields: Record<string, unknown>): Response {
  if (error instanceof SsoError) {
    const log = error.status >= 500 ? logger.error : logger.warn;
    log('maestrano: SSO failed', { ...fields, reason: error.reason, ...stepField(error), cause: describeCause(error.cause) });
    return json(error.status, { error: error.reason, message: error.message });
  }
  if (error instanceof WebhookError) {
    const status = { credentials: 401, payload: 400, too_large: 413, method: 405 }[error.reason];
    return json(status, { error: error.reason, message: error.message });
  }
  if (error instanceof PayloadValidationError) {
    return json(400, { error: 'payload_invalid', message: error.message, issues: error.issues });
  }
  logger.error('maestrano: route handler failed', {
    ...fields,
    code: isMaestranoError(error) ? error.code : undefined,
    error: describeCause(error),
  });
  return json(500, { error: 'internal_error', message: 'Internal error' });
}

function describeCause(cause: unknown): string | undefined {
  if (cause === undefined) return undefined;
  // Total: a thrown value with no text form (a null-prototype object, a throwing `toString`
  // or getter) must not make the error answer itself throw (the failure went unlogged).
  try {
    if (cause instanceof Error) return `${cause.name}: ${cause.message}`;
  } catch {
    // Described as any other thrown value below.
  }
  return thrownText(cause);
}
