// The start-up banner prints `db.location` ("Acme CRM listening on … (database: …)"): it must
// never carry the database password, wherever the PostgreSQL URL puts it (the user info, or the
// libpq `?password=` query parameter, which the pg driver reads as well). Real PostgreSQL.
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openDatabase } from '../src/db.js';

const SERVER = process.env.MAESTRANO_TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const PASSWORD = 'Crm-Pg-Sekr3t';
const name = `mno_crm_location_${process.pid}_${Date.now()}`;

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: SERVER });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

let available = true;
beforeAll(async () => {
  try {
    await admin(`CREATE DATABASE ${name}`);
  } catch (error) {
    if (process.env.CI) throw error;
    available = false;
  }
});
afterAll(async () => {
  if (available) await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
});

it('the database location printed at start-up hides a password given as ?password=', async ({ skip }) => {
  if (!available) skip();
  const server = new URL(SERVER);
  const url = `postgresql://${server.username || 'postgres'}@${server.host}/${name}?password=${PASSWORD}`;
  const db = await openDatabase({ databaseUrl: url });
  try {
    expect(db.provider).toBe('postgresql');
    // The database really is the one named (the CRM's tables were migrated into it).
    expect(await db.prisma.company.count()).toBe(0);
    expect(db.location).toContain(name);
    expect(db.location).not.toContain(PASSWORD);
  } finally {
    await db.close();
  }
});

it('the database location hides a password in the user info', async ({ skip }) => {
  if (!available) skip();
  const server = new URL(SERVER);
  const url = `postgresql://${server.username || 'postgres'}:${PASSWORD}@${server.host}/${name}`;
  const db = await openDatabase({ databaseUrl: url });
  try {
    expect(db.location).toContain(name);
    expect(db.location).not.toContain(PASSWORD);
  } finally {
    await db.close();
  }
});
