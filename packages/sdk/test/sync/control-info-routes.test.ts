// The Rails connector's two informational platform calls (PROTOCOL §5.4): GET
// /maestrano/dependancies and GET /version, through `mno.handler` on loopback HTTP.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMaestrano, memoryAdapter, staticTenants, type Tenant, toNodeListener } from '@org/maestrano-sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import packageJson from '../../package.json' with { type: 'json' };
import { FakeConnec } from './fake-connec.js';
import { API_ID, API_KEY, buildConnector, LocalApp, ORG_UID, silentLogger, testTenant } from './harness.js';

let handler: (request: Request) => Promise<Response> = async () => new Response(null, { status: 503 });
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => void toNodeListener((request) => handler(request))(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
const saved = { CI_BRANCH: process.env.CI_BRANCH, CI_COMMIT: process.env.CI_COMMIT, NODE_ENV: process.env.NODE_ENV };
afterEach(() => {
  for (const [key, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});

function serve(tenants: Tenant[], connector = true): void {
  const mno = createMaestrano({
    tenants: staticTenants(tenants),
    storage: memoryAdapter(),
    provisioning: { createCompany: () => ({ id: 'company' }), createUser: () => ({ id: 'user' }) },
    onLogin: () => new Response('ok'),
    logger: silentLogger,
    ...(connector ? { connector: buildConnector(new LocalApp()), sync: { connecPort: () => new FakeConnec(ORG_UID) } } : {}),
  });
  handler = mno.handler;
}

const basic = (id: string, key: string) => `Basic ${Buffer.from(`${id}:${key}`).toString('base64')}`;
async function get(path: string, auth: string | null = basic(API_ID, API_KEY)): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${base}${path}`, { headers: auth === null ? {} : { authorization: auth } });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

describe('GET /maestrano/dependancies and GET /version', () => {
  it('answer the connector framework information to the tenant credentials', async () => {
    serve([testTenant()]);
    expect(await get('/maestrano/dependancies')).toEqual({ status: 200, body: { connec: '1.0', impac: '1.0', maestrano_hub: '1.0' } });
    process.env.CI_BRANCH = 'v1.4.x';
    process.env.CI_COMMIT = 'abc123';
    process.env.NODE_ENV = 'production';
    expect(await get('/version')).toEqual({
      status: 200,
      body: { framework: '@org/maestrano-sdk', framework_version: packageJson.version, ci_branch: 'v1.4.x', ci_commit: 'abc123', env: 'production', node_version: process.version },
    });
    delete process.env.CI_BRANCH;
    delete process.env.CI_COMMIT;
    delete process.env.NODE_ENV;
    expect((await get('/version')).body).toMatchObject({ ci_branch: null, ci_commit: null, env: null });
  });

  it('refuse missing or wrong credentials with 401, and say nothing else', async () => {
    serve([testTenant()]);
    for (const path of ['/maestrano/dependancies', '/version']) {
      expect(await get(path, null)).toEqual({ status: 401, body: { error: 'Invalid credentials' } });
      expect(await get(path, basic(API_ID, 'wrong-key'))).toEqual({ status: 401, body: { error: 'Invalid credentials' } });
    }
  });

  it('with several marketplaces, the credentials pick the tenant (its environment when NODE_ENV is unset)', async () => {
    delete process.env.NODE_ENV;
    serve([{ ...testTenant('acme', 'app-acme', 'key-acme-0123456789'), environment: 'acme-uat' }, { ...testTenant('globex', 'app-globex', 'key-globex-0123456789'), environment: 'globex-prod' }]);
    expect((await get('/version', basic('app-globex', 'key-globex-0123456789'))).body).toMatchObject({ env: 'globex-prod' });
    expect((await get('/version', basic('app-acme', 'key-acme-0123456789'))).body).toMatchObject({ env: 'acme-uat' });
    expect((await get('/version', basic('app-acme', 'key-globex-0123456789'))).status).toBe(401);
  });

  it('are not routes without a connector (404 like any unknown path)', async () => {
    serve([testTenant()], false);
    expect((await get('/maestrano/dependancies')).status).toBe(404);
    expect((await get('/version')).status).toBe(404);
  });
});
