/** The benchmark app: one local table of contacts (trivial mapper), PostgreSQL storage via adapter-prisma. */
import { migrate, prismaAdapter } from '@org/maestrano-adapter-prisma';
import { createMaestrano, defineConnector, defineEntity, type Maestrano, type TenantRegistry } from '@org/maestrano-sdk';
import { PrismaPg } from '@prisma/adapter-pg';
import type pg from 'pg';
import { PrismaClient } from '../../packages/adapter-prisma/test/generated/postgresql/client.js';
import { benchPool } from '../lib/pg.js';
import { profileStorage } from '../lib/profile.js';

export async function createBenchApp(databaseUrl: string, tenants: TenantRegistry, realmSuffix = ''): Promise<{ mno: Maestrano; pool: pg.Pool; close(): Promise<void> }> {
  const prisma = new PrismaClient({ adapter: new PrismaPg(benchPool({ connectionString: databaseUrl, max: 10 })) });
  await migrate({ prisma });
  const pool = benchPool({ connectionString: databaseUrl, max: 4 });
  await pool.query('CREATE TABLE IF NOT EXISTS contacts (id bigserial PRIMARY KEY, idem_key text UNIQUE, name text)');
  const contacts = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'inbound',
    toLocal: (p: Record<string, unknown>) => ({ name: `${String(p.first_name ?? '')} ${String(p.last_name ?? '')}` }),
    local: {
      create: async (d, ctx) => {
        const r = await pool.query<{ id: string }>(
          'INSERT INTO contacts (idem_key, name) VALUES ($1, $2) ON CONFLICT (idem_key) DO UPDATE SET name = EXCLUDED.name RETURNING id::text',
          [ctx.idempotencyKey, d.name],
        );
        return { id: r.rows[0]?.id ?? '' };
      },
      // One multi-row INSERT per batch (what the connector guide recommends for volume).
      createMany: async (items) => {
        const values: unknown[] = [];
        const tuples = items.map((item, i) => {
          values.push(item.ctx.idempotencyKey, item.data.name);
          return `($${i * 2 + 1}, $${i * 2 + 2})`;
        });
        const r = await pool.query<{ id: string; idem_key: string }>(
          `INSERT INTO contacts (idem_key, name) VALUES ${tuples.join(',')} ON CONFLICT (idem_key) DO UPDATE SET name = EXCLUDED.name RETURNING id::text, idem_key`,
          values,
        );
        const byKey = new Map(r.rows.map((row) => [row.idem_key, row.id]));
        return items.map((item) => ({ id: byKey.get(item.ctx.idempotencyKey) ?? '' }));
      },
      update: async (id, d) => {
        await pool.query('UPDATE contacts SET name = $2 WHERE id = $1', [id, d.name]);
      },
    },
  });
  const mno = createMaestrano({
    tenants,
    storage: profileStorage(prismaAdapter(prisma), `[${process.pid}] `),
    provisioning: { createCompany: () => ({ id: 'x' }), createUser: () => ({ id: 'y' }) },
    onLogin: () => new Response('ok'),
    // Each run links its own ids under its own realm, so runs against one sandbox never collide.
    connector: defineConnector({ entities: [contacts], identity: { realm: ({ groupId }) => `${groupId}${realmSuffix}` } }),
    limits: { maxBodyBytes: 10 * 1024 * 1024 },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  return {
    mno,
    pool,
    async close() {
      await pool.end();
      await prisma.$disconnect();
    },
  };
}
