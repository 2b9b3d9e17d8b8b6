/**
 * One measured run of the import benchmark, in its own process so that its peak RSS is its own.
 * Mode `sdk`: `mno.sync.importGroup` through adapter-prisma on PostgreSQL with trivial mappers
 * into two local tables. Mode `baseline`: the same pages with plain `fetch` and raw `pg`
 * multi-row INSERTs. Prints one JSON line: { mode, records, ms, cpuMs, maxRssMb }.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { migrate, prismaAdapter } from '@org/maestrano-adapter-prisma';
import { createMaestrano, defineConnector, defineEntity, tenantsFromDevPlatform } from '@org/maestrano-sdk';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../../packages/adapter-prisma/test/generated/postgresql/client.js';
import { benchPool } from '../lib/pg.js';
import { profileStorage } from '../lib/profile.js';

const mode = process.argv[2];
const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} missing`);
  return v;
};
const PG_SERVER = process.env.MAESTRANO_TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const sandboxUrl = env('BENCH_SANDBOX_URL');
const groupId = env('BENCH_GROUP');

async function admin(sql: string) {
  const c = new pg.Client({ connectionString: PG_SERVER });
  await c.connect();
  await c.query(sql);
  await c.end();
}
const dbName = `mno_bench_import_${randomBytes(4).toString('hex')}`;
await admin(`CREATE DATABASE "${dbName}"`);
const url = new URL(PG_SERVER);
url.pathname = `/${dbName}`;
const databaseUrl = url.toString();

const refId = (value: unknown): string | null => {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const entry = value.find((e) => (e as { provider?: string }).provider === 'connec') as { id?: string } | undefined;
    return entry?.id ?? null;
  }
  return null;
};

let records = 0;
let ms = 0;
/** CPU time of this process during the measured window. */
let cpuMs = 0;
const cpuSince = (start: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
};
try {
  if (mode === 'baseline' || mode === 'baseline-links') {
    // `baseline-links` also PUTs each page's own ids back (one plain batch call per page), the
    // link-back the protocol asks of an importer: it tells the SDK's overhead from the protocol's.
    const links = mode === 'baseline-links';
    const pool = benchPool({ connectionString: databaseUrl, max: 4 });
    await pool.query('CREATE TABLE rows (connec_id text PRIMARY KEY, collection text NOT NULL, name text, ref text)');
    const auth = `Basic ${Buffer.from(`${env('BENCH_API_ID')}:${env('BENCH_API_KEY')}`).toString('base64')}`;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (const collection of ['organizations', 'people']) {
      let next: string | undefined = `${sandboxUrl}/api/v2/${groupId}/${collection}?$top=100`;
      while (next) {
        const res = await fetch(next, { headers: { authorization: auth, accept: 'application/vnd.api+json', 'connec-external-ids': 'true' } });
        const body = (await res.json()) as Record<string, unknown> & { pagination?: { next?: string } };
        const page = (body[collection] as Record<string, unknown>[]) ?? [];
        if (page.length > 0) {
          const values: unknown[] = [];
          const tuples = page.map((r, i) => {
            values.push(refId(r.id), collection, String(r.name ?? r.last_name ?? ''), refId(r.organization_id));
            return `($${i * 4 + 1}, $${i * 4 + 2}, $${i * 4 + 3}, $${i * 4 + 4})`;
          });
          await pool.query(`INSERT INTO rows (connec_id, collection, name, ref) VALUES ${tuples.join(',')} ON CONFLICT DO NOTHING`, values);
          if (links) {
            const ops = page.map((r) => ({
              method: 'put',
              url: `/api/v2/${groupId}/${collection}/${refId(r.id)}`,
              params: { [collection]: { id: [{ id: `local-${refId(r.id)}`, provider: env('BENCH_API_ID'), realm: groupId }] } },
            }));
            const linked = await fetch(`${sandboxUrl}/batch`, {
              method: 'POST',
              headers: { authorization: auth, 'content-type': 'application/json' },
              body: JSON.stringify({ sequential: true, ops }),
            });
            if (!linked.ok) throw new Error(`link-back batch answered ${linked.status}`);
            await linked.arrayBuffer();
          }
        }
        records += page.length;
        next = body.pagination?.next;
      }
    }
    ms = performance.now() - t0;
    cpuMs = cpuSince(cpu0);
    await pool.end();
  } else {
    const prisma = new PrismaClient({ adapter: new PrismaPg(benchPool({ connectionString: databaseUrl, max: 24 })) });
    await migrate({ prisma });
    const storage = profileStorage(prismaAdapter(prisma));
    const pool = benchPool({ connectionString: databaseUrl, max: 10 });
    await pool.query(`CREATE TABLE orgs (id bigserial PRIMARY KEY, idem_key text UNIQUE, name text, org_id text);
      CREATE TABLE people (id bigserial PRIMARY KEY, idem_key text UNIQUE, name text, org_id text)`);
    const insert = async (table: string, key: string, name: string, org: string | null) => {
      const r = await pool.query<{ id: string }>(
        table === 'orgs'
          ? 'INSERT INTO orgs (idem_key, name) VALUES ($1, $2) ON CONFLICT (idem_key) DO UPDATE SET name = EXCLUDED.name RETURNING id::text'
          : 'INSERT INTO people (idem_key, name, org_id) VALUES ($1, $2, $3) ON CONFLICT (idem_key) DO UPDATE SET name = EXCLUDED.name RETURNING id::text',
        table === 'orgs' ? [key, name] : [key, name, org],
      );
      return r.rows[0]?.id ?? '';
    };
    /** One multi-row INSERT per page (the `local.createMany` batch form), idempotent on the key. */
    const insertMany = async (table: 'orgs' | 'people', rows: { key: string; name: string; org: string | null }[]) => {
      const values: unknown[] = [];
      const tuples = rows.map((r, i) => {
        values.push(r.key, r.name, r.org);
        return `($${i * 3 + 1}, $${i * 3 + 2}, $${i * 3 + 3})`;
      });
            const r = await pool.query<{ id: string; idem_key: string }>(
        `INSERT INTO ${table} (idem_key, name, org_id) VALUES ${tuples.join(',')} ON CONFLICT (idem_key) DO UPDATE SET name = EXCLUDED.name RETURNING id::text, idem_key`,
        values,
      );
      const byKey = new Map(r.rows.map((row) => [row.idem_key, row.id]));
      return rows.map((row) => ({ id: byKey.get(row.key) ?? '' }));
    };
    const orgs = defineEntity({
      name: 'orgs',
      connec: 'organizations',
      direction: 'inbound',
      toLocal: (o: Record<string, unknown>) => ({ name: String(o.name ?? '') }),
      local: {
        create: async (d, ctx) => ({ id: await insert('orgs', ctx.idempotencyKey, d.name, null) }),
        createMany: (items) => insertMany('orgs', items.map((i) => ({ key: i.ctx.idempotencyKey, name: i.data.name, org: null }))),
        update: async (id, d) => {
          await pool.query('UPDATE orgs SET name = $2 WHERE id = $1', [id, d.name]);
        },
      },
    });
    const people = defineEntity({
      name: 'people',
      connec: 'people',
      direction: 'inbound',
      references: { organization_id: 'orgs' },
      toLocal: (p: Record<string, unknown>) => ({
        name: `${String(p.first_name ?? '')} ${String(p.last_name ?? '')}`,
        org: typeof p.organization_id === 'string' ? p.organization_id : null,
      }),
      local: {
        create: async (d, ctx) => ({ id: await insert('people', ctx.idempotencyKey, d.name, d.org) }),
        createMany: (items) => insertMany('people', items.map((i) => ({ key: i.ctx.idempotencyKey, name: i.data.name, org: i.data.org }))),
        update: async (id, d) => {
          await pool.query('UPDATE people SET name = $2 WHERE id = $1', [id, d.name]);
        },
      },
    });
    const tenants = await tenantsFromDevPlatform({ host: sandboxUrl, key: env('BENCH_ENV_KEY'), secret: env('BENCH_ENV_SECRET'), refreshMs: 0 });
    const tenant = tenants.list()[0]?.name ?? '';
    const claim = await storage.groups.claim(tenant, groupId, { owner: 'bench', ttlMs: 60_000 });
    if (claim.state !== 'claimed') throw new Error('group claim failed');
    await storage.groups.complete(tenant, groupId, 'bench', { companyId: 'bench-co', orgUid: env('BENCH_ORG_UID') });
    const mno = createMaestrano({
      tenants,
      storage,
      provisioning: { createCompany: () => ({ id: 'x' }), createUser: () => ({ id: 'y' }) },
      onLogin: () => new Response('ok'),
      connector: defineConnector({ entities: [people, orgs] }),
      sync: { pageSize: Number(process.env.BENCH_PAGE ?? '100'), importConcurrency: Number(process.env.BENCH_CONCURRENCY ?? '32'), importPagesInFlight: Number(process.env.BENCH_PAGES_IN_FLIGHT ?? '2') },
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const report = await mno.sync.importGroup({ tenant, groupId });
    ms = performance.now() - t0;
    cpuMs = cpuSince(cpu0);
    records = Object.values(report.entities).reduce((n, e) => n + e.fetched, 0);
    const failed = Object.values(report.entities).reduce((n, e) => n + e.failed + e.deferred, 0);
    if (failed > 0) throw new Error(`${failed} records failed or were deferred`);
    await pool.end();
    await prisma.$disconnect();
  }
} finally {
  await admin(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
}
const maxRssMb = process.resourceUsage().maxRSS / 1024;
process.stdout.write(`${JSON.stringify({ mode, records, ms, cpuMs, maxRssMb })}\n`);
