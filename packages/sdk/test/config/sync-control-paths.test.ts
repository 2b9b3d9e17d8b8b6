// The connector control endpoints' paths (PROTOCOL §1.4 `app.synchronization_*_path`, §5.4):
// parsed from the tenant config, defaulted, derived, and compiled into routes by the router.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRouter, type HandlerArgs, type Logger, type MarketplaceInput, resolveTenants, type RouteTable, routePaths, staticTenants, toNodeListener } from '@org/maestrano-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const market = (name: string, app: Record<string, unknown> = {}): MarketplaceInput => ({
  marketplace: name,
  app: { host: 'https://app.example.com', ...app },
  api: { id: `app-${name}`, key: `key-${name}`, host: 'https://hub.example.com' },
  sso: { enabled: false },
});

const syncPaths = (name: string, app: Record<string, unknown> = {}) => {
  const [tenant] = resolveTenants([market(name, app)]);
  const paths = routePaths(tenant!);
  return { app: tenant!.app, start: paths.syncStart, status: paths.syncStatus, toggle: paths.syncToggle, updateMetadata: paths.syncUpdateMetadata };
};

describe('synchronization paths in the tenant config', () => {
  it('defaults to the Rails connector routes under /maestrano/:tenant/synchronizations', () => {
    expect(syncPaths('uat')).toEqual({
      app: { host: 'https://app.example.com' },
      start: '/maestrano/:tenant/synchronizations',
      status: '/maestrano/:tenant/synchronizations/:group_id',
      toggle: '/maestrano/:tenant/synchronizations/toggle_sync',
      updateMetadata: '/maestrano/:tenant/synchronizations/update_metadata',
    });
  });

  it('takes the configured paths as written, update_metadata beside toggle_sync', () => {
    expect(
      syncPaths('uat', {
        synchronization_start_path: '/maestrano/uat/synchronizations',
        synchronization_toggle_path: '/maestrano/uat/synchronizations/toggle_sync',
        synchronization_status_path: '/maestrano/uat/synchronizations/:cld-uid',
      }),
    ).toEqual({
      app: {
        host: 'https://app.example.com',
        synchronization: {
          startPath: '/maestrano/uat/synchronizations',
          togglePath: '/maestrano/uat/synchronizations/toggle_sync',
          statusPath: '/maestrano/uat/synchronizations/:cld-uid',
        },
      },
      start: '/maestrano/uat/synchronizations',
      status: '/maestrano/uat/synchronizations/:cld-uid',
      toggle: '/maestrano/uat/synchronizations/toggle_sync',
      updateMetadata: '/maestrano/uat/synchronizations/update_metadata',
    });
  });

  it('derives the paths not configured from the start path', () => {
    expect(syncPaths('uat', { synchronization_start_path: '/hooks/sync/' })).toMatchObject({
      start: '/hooks/sync/',
      status: '/hooks/sync/:group_id',
      toggle: '/hooks/sync/toggle_sync',
      updateMetadata: '/hooks/sync/update_metadata',
    });
    expect(syncPaths('uat', { synchronization_start_path: '/s', synchronization_toggle_path: '/s/switch?marketplace=uat' })).toMatchObject({
      toggle: '/s/switch?marketplace=uat',
      updateMetadata: '/s/update_metadata',
    });
    // A start path with a query keeps it on every derived path.
    expect(syncPaths('uat', { synchronization_start_path: '/s?marketplace=uat' })).toMatchObject({
      status: '/s/:group_id?marketplace=uat',
      toggle: '/s/toggle_sync?marketplace=uat',
      updateMetadata: '/s/update_metadata?marketplace=uat',
    });
  });

  it('takes empty or null values as not configured, and a full URL as its path', () => {
    expect(syncPaths('uat', { synchronization_start_path: '', synchronization_toggle_path: null, synchronization_status_path: '' }).app).toEqual({
      host: 'https://app.example.com',
    });
    expect(syncPaths('uat', { synchronization_start_path: 'https://app.example.com/mno/sync?marketplace=uat' }).start).toBe('/mno/sync?marketplace=uat');
  });

  it('ignores a relative or blank-containing path (the defaults apply): the marketplace still loads', () => {
    const relative = syncPaths('uat', { synchronization_status_path: 'synchronizations/:id', synchronization_toggle_path: '/a b/toggle_sync' });
    expect(relative.app).toEqual({ host: 'https://app.example.com' });
    expect(relative.status).toBe('/maestrano/:tenant/synchronizations/:group_id');
    expect(relative.toggle).toBe('/maestrano/:tenant/synchronizations/toggle_sync');
  });
});

describe('router: synchronization routes', () => {
  const tenants = staticTenants(
    resolveTenants([
      market('mkt-a'),
      market('mkt-b', { synchronization_start_path: '/custom/b/sync', synchronization_status_path: '/custom/b/sync/:cld-uid' }),
    ]),
  );
  const seen: { kind: string; tenant: string; params: Record<string, string> }[] = [];
  const record =
    (kind: string) =>
    async ({ tenant, params }: HandlerArgs) => {
      seen.push({ kind, tenant: tenant.name, params });
      return Response.json({ kind });
    };
  const logger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
  const withSync: RouteTable = { syncStart: record('syncStart'), syncStatus: record('syncStatus'), syncToggle: record('syncToggle'), syncUpdateMetadata: record('syncUpdateMetadata') };
  let server: Server;
  let base: string;
  let routes: RouteTable = withSync;
  beforeAll(async () => {
    const handlers = { with: createRouter({ tenants, routes: withSync, maxBodyBytes: 1024, logger }), without: createRouter({ tenants, routes: {}, maxBodyBytes: 1024, logger }) };
    server = createServer((req, res) => void toNodeListener((request) => (routes === withSync ? handlers.with : handlers.without)(request))(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const creds = (name: string) => ({ authorization: `Basic ${Buffer.from(`app-${name}:key-${name}`).toString('base64')}` });
  const send = async (method: string, path: string, name = 'mkt-a') => {
    seen.length = 0;
    const res = await fetch(`${base}${path}`, { method, headers: creds(name) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, seen: [...seen] };
  };

  it('routes each method and path to its kind, with the group id as a parameter', async () => {
    routes = withSync;
    expect(await send('POST', '/maestrano/mkt-a/synchronizations')).toMatchObject({ status: 200, seen: [{ kind: 'syncStart', tenant: 'mkt-a', params: {} }] });
    expect(await send('GET', '/maestrano/mkt-a/synchronizations/cld-1')).toMatchObject({ status: 200, seen: [{ kind: 'syncStatus', params: { group_id: 'cld-1' } }] });
    expect(await send('PUT', '/maestrano/mkt-a/synchronizations/toggle_sync')).toMatchObject({ seen: [{ kind: 'syncToggle' }] });
    expect(await send('PUT', '/maestrano/mkt-a/synchronizations/update_metadata')).toMatchObject({ seen: [{ kind: 'syncUpdateMetadata' }] });
    expect(await send('PUT', '/maestrano/mkt-a/synchronizations/cld-1')).toMatchObject({ status: 405, seen: [] });
    // Configured paths, with the status parameter named as configured.
    expect(await send('GET', '/custom/b/sync/cld-2', 'mkt-b')).toMatchObject({ seen: [{ kind: 'syncStatus', tenant: 'mkt-b', params: { 'cld-uid': 'cld-2' } }] });
    expect(await send('PUT', '/custom/b/sync/toggle_sync', 'mkt-b')).toMatchObject({ seen: [{ kind: 'syncToggle', tenant: 'mkt-b' }] });
    expect(await send('POST', '/maestrano/mkt-b/synchronizations', 'mkt-b')).toMatchObject({ status: 404, seen: [] });
  });

  it('serves no tenant-suffixed alias of the synchronization paths', async () => {
    routes = withSync;
    expect(await send('POST', '/maestrano/mkt-a/synchronizations/mkt-a')).toMatchObject({ status: 405, seen: [] });
    expect(await send('PUT', '/maestrano/mkt-a/synchronizations/toggle_sync/mkt-a')).toMatchObject({ status: 404, seen: [] });
  });

  it('refuses other credentials before the handler runs', async () => {
    routes = withSync;
    expect(await send('PUT', '/maestrano/mkt-a/synchronizations/toggle_sync', 'mkt-b')).toEqual({ status: 401, body: { error: 'Invalid credentials' }, seen: [] });
  });

  it('without handlers (no connector), the synchronization paths are not routes', async () => {
    routes = {};
    expect(await send('POST', '/maestrano/mkt-a/synchronizations')).toMatchObject({ status: 404, body: { error: 'unknown_tenant' } });
    expect(await send('GET', '/maestrano/mkt-a/synchronizations/cld-1')).toMatchObject({ status: 404 });
  });
});
