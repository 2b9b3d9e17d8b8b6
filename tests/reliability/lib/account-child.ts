/**
 * A separate app process for the account-half crash tests: createMaestrano on PostgreSQL
 * (Prisma adapter), served on a loopback port, its worker running. The app's companies live
 * in the table `app_companies` of the same database (createCompany is idempotent per group).
 * Crash points (env): CRASH_ON_FETCH=`POST <path regex>` hangs (after printing `CRASHPOINT`)
 * once such a request has been answered; CRASH_AT=`groups.complete` hangs before that storage
 * call. The parent then kills the process with SIGKILL.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMaestrano, type StorageAdapter, tenantsFromDevPlatform, toNodeListener } from '@org/maestrano-sdk';
import pg from 'pg';
import { prismaStorage } from './pg.js';

const env = (name: string) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};
const hang = (what: string): Promise<never> => {
  process.stdout.write(`CRASHPOINT ${what}\n`);
  return new Promise<never>(() => {});
};

const databaseUrl = env('CRASH_DATABASE_URL');
const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
const { storage: base } = await prismaStorage(databaseUrl, { migrateFirst: false });
const crashAt = process.env.CRASH_AT ?? '';
const storage: StorageAdapter =
  crashAt === 'groups.complete'
    ? { ...base, groups: { ...base.groups, complete: () => hang('groups.complete') } as StorageAdapter['groups'] }
    : base;

const crashOnFetch = process.env.CRASH_ON_FETCH ?? '';
const [crashMethod, crashPath] = crashOnFetch.split(' ');
const crashFetch: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  const req = input instanceof Request ? input : null;
  const url = new URL(req ? req.url : String(input));
  const method = (req?.method ?? init?.method ?? 'GET').toUpperCase();
  if (crashOnFetch && method === crashMethod && new RegExp(crashPath!).test(url.pathname)) {
    await res.arrayBuffer();
    return hang(`${method} ${url.pathname} -> ${res.status}`);
  }
  return res;
};

const tenants = await tenantsFromDevPlatform({ host: env('CRASH_DEVPL_HOST'), key: env('CRASH_DEVPL_KEY'), secret: env('CRASH_DEVPL_SECRET'), refreshMs: 0 });
const quiet = process.env.CRASH_DEBUG ? console : null;
const mno = createMaestrano({
  tenants,
  storage,
  fetch: crashFetch,
  sso: { allowIdpInitiated: true, provisioningClaimTtlMs: 3_000 },
  provisioning: {
    createCompany: async (group) => {
      await pool.query(`INSERT INTO app_companies (id, group_id, status) VALUES ($1, $2, 'active') ON CONFLICT (group_id) DO NOTHING`, [`co-${group.uid}-${process.pid}`, group.uid]);
      const { rows } = await pool.query<{ id: string }>('SELECT id FROM app_companies WHERE group_id = $1', [group.uid]);
      return { id: rows[0]!.id };
    },
    createUser: (user) => ({ id: `user-${user.key}` }),
    cancelCompany: async (company) => {
      await pool.query(`UPDATE app_companies SET status = 'cancelled' WHERE id = $1`, [company.id]);
    },
  },
  onLogin: ({ company, outcome }) => Response.json({ companyId: company.id, outcome }),
  billing: {
    onCompanyCreated: () => ({ priceCents: 2900, description: 'Crash plan', currency: 'USD', period: 'Month' }),
    subscription: { claimTtlMs: 3_000, retryDelayMs: 100 },
    charge: { claimTtlMs: 3_000, waitMs: 500 },
    duplicateCheckDelayMs: 1_000,
  },
  logger: {
    debug() {},
    info: (m: string, f?: unknown) => quiet?.error('[child info]', m, JSON.stringify(f)),
    warn: (m: string, f?: unknown) => quiet?.error('[child warn]', m, JSON.stringify(f)),
    error: (m: string, f?: unknown) => console.error('[child error]', m, JSON.stringify(f)),
  },
});

const handler = async (request: Request): Promise<Response> => {
  const url = new URL(request.url);
  if (url.pathname === '/test/charge' && request.method === 'POST') {
    const body = (await request.json()) as { tenant: string; groupId: string; key: string };
    try {
      const result = await mno.billing.charge({ tenant: body.tenant, groupId: body.groupId, priceCents: 500, currency: 'USD', description: `Charge ${body.key}`, idempotencyKey: body.key });
      return Response.json({ billId: result.billId, status: result.status });
    } catch (error) {
      return Response.json({ error: String(error) }, { status: 500 });
    }
  }
  return mno.handler(request);
};
const server = createServer((req, res) => void toNodeListener(handler)(req, res));
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const controller = new AbortController();
const working =
  process.env.CRASH_WORKER !== '0'
    ? mno.worker.run({ signal: controller.signal, concurrency: 2, pollIntervalMs: 50, leaseMs: 2_000, backoff: { baseMs: 50, maxMs: 500 } })
    : Promise.resolve();
// SIGTERM (the parent's `stop`): the worker drains its jobs in flight and the server finishes
// its requests, then the process exits (the parent kills it after 3 s otherwise).
process.on('SIGTERM', () => {
  controller.abort();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  void Promise.allSettled([working, closed]).then(() => process.exit(0));
});
process.stdout.write(`ready http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
