import type { Logger, RouteKind, RouteTable, Tenant, TenantRegistry } from '../core/types.js';
import { isMaestranoError, PayloadValidationError, SsoError, WebhookError } from '../errors/index.js';
import { BodyTooLargeError, readLimitedBody, withBufferedBody } from './body.js';

/** Fixed paths (without the tenant segment) of the routes whose path is not configurable. */
export const FIXED_PATHS = {
  metadata: '/maestrano/metadata',
  samlMetadata: '/maestrano/auth/saml/metadata',
} as const;

export const ROUTE_METHODS: Record<RouteKind, string> = {
  metadata: 'GET',
  samlMetadata: 'GET',
  ssoInit: 'GET',
  ssoConsume: 'POST',
  groupDeleted: 'DELETE',
  groupUserDeleted: 'DELETE',
  connecNotification: 'POST',
};

interface CompiledRoute {
  kind: RouteKind;
  method: string;
  /** Literal segments, or `{ param }` for `:name` segments. */
  segments: (string | { param: string })[];
}

/** The absolute path (tenant segment included) of each route kind for one tenant. */
export function routePaths(tenant: Tenant): Record<RouteKind, string> {
  return {
    metadata: `${FIXED_PATHS.metadata}/${tenant.name}`,
    samlMetadata: `${FIXED_PATHS.samlMetadata}/${tenant.name}`,
    ssoInit: tenant.sso.initPath,
    ssoConsume: tenant.sso.consumePath,
    groupDeleted: tenant.webhooks.account.groupPath,
    groupUserDeleted: tenant.webhooks.account.groupUserPath,
    connecNotification: tenant.webhooks.connec.notificationPath,
  };
}

function splitPath(path: string): string[] {
  return path.split('/').filter((s) => s.length > 0);
}

function compile(tenant: Tenant): CompiledRoute[] {
  const paths = routePaths(tenant);
  return (Object.keys(paths) as RouteKind[]).map((kind) => ({
    kind,
    method: ROUTE_METHODS[kind],
    segments: splitPath(paths[kind]).map((s) => (s.startsWith(':') ? { param: s.slice(1) } : s)),
  }));
}

function match(route: CompiledRoute, segments: string[]): Record<string, string> | null {
  if (route.segments.length !== segments.length) return null;
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

function json(status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): Response {
  return Response.json(body, { status, headers: { 'cache-control': 'no-store', ...headers } });
}

export interface RouterOptions {
  tenants: TenantRegistry;
  routes: RouteTable;
  maxBodyBytes: number;
  logger: Logger;
}

/**
 * The framework-neutral handler behind `mno.handler`. Tenant = last path segment (unknown
 * -> 404 JSON); the tenant's configured paths select a route kind and its params (`id`,
 * `group_id`); wrong method -> 405; body over the limit -> 413; kind without a handler
 * -> 404. Bodies are buffered (within the limit) before the route handler runs, so handlers
 * can read them freely. Errors never leak a stack trace: typed errors map to 4xx, anything
 * else to a logged 500.
 */
export function createRouter(options: RouterOptions): (request: Request) => Promise<Response> {
  const compiled = new WeakMap<Tenant, CompiledRoute[]>();
  const routesOf = (tenant: Tenant): CompiledRoute[] => {
    let routes = compiled.get(tenant);
    if (!routes) {
      routes = compile(tenant);
      compiled.set(tenant, routes);
    }
    return routes;
  };

  return async (request: Request): Promise<Response> => {
    let pathname: string;
    try {
      pathname = new URL(request.url).pathname;
    } catch {
      return json(400, { error: 'bad_request', message: 'Invalid request URL' });
    }
    const segments = splitPath(pathname);
    const last = segments.at(-1);
    let tenantName: string | undefined;
    try {
      tenantName = last === undefined ? undefined : decodeURIComponent(last);
    } catch {
      tenantName = undefined;
    }
    const tenant = tenantName === undefined ? undefined : options.tenants.get(tenantName);
    if (!tenant) return json(404, { error: 'unknown_tenant', message: 'Unknown tenant' });

    const method = request.method.toUpperCase();
    const allowed: string[] = [];
    let found: { route: CompiledRoute; params: Record<string, string> } | undefined;
    for (const route of routesOf(tenant)) {
      const params = match(route, segments);
      if (!params) continue;
      if (route.method === method || (method === 'HEAD' && route.method === 'GET')) {
        found = { route, params };
        break;
      }
      allowed.push(route.method);
    }
    if (!found) {
      if (allowed.length > 0) {
        await request.body?.cancel().catch(() => {});
        return json(405, { error: 'method_not_allowed', message: 'Method not allowed' }, { allow: [...new Set(allowed)].join(', ') });
      }
      return json(404, { error: 'not_found', message: 'Not found' });
    }
    const handler = options.routes[found.route.kind];
    if (!handler) return json(404, { error: 'not_found', message: 'Not found' });

    let buffered: Request;
    try {
      buffered = withBufferedBody(request, await readLimitedBody(request, options.maxBodyBytes));
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        return json(413, { error: 'payload_too_large', message: `Request body exceeds ${error.limit} bytes` });
      }
      return json(400, { error: 'bad_request', message: 'Could not read the request body' });
    }

    try {
      return await handler({ request: buffered, tenant, params: found.params });
    } catch (error) {
      return errorResponse(error, options.logger, { tenant: tenant.name, route: found.route.kind });
    }
  };
}

/** Maps an error thrown by a route handler to a safe JSON response. */
export function errorResponse(error: unknown, logger: Logger, fields: Record<string, unknown>): Response {
  if (error instanceof SsoError) {
    const log = error.status >= 500 ? logger.error : logger.warn;
    log('maestrano: SSO failed', { ...fields, reason: error.reason, cause: describeCause(error.cause) });
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
  if (cause instanceof Error) return `${cause.name}: ${cause.message}`;
  return String(cause);
}
