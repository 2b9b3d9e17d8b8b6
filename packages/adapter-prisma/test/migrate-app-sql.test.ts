// migrate({ migrationsDir }) runs an app's own Prisma migrations, split into statements at
// top-level semicolons. A semicolon inside a PostgreSQL dollar-quoted body whose tag holds a
// digit (`$fn1$`, as valid a tag as `$body$`) or inside an escape string (`E'it\'s; …'`) is
// not a statement end: `prisma migrate deploy` runs such a script, so migrate() must too.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate, splitSqlStatements } from '../src/migrate.js';
import { createPgDatabase, openPgPrisma, pgUnavailableReason } from './backends.js';

const pgUnavailable = await pgUnavailableReason();
if (pgUnavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${pgUnavailable}`);

const APP_SQL = `-- An app's own migration: a trigger function and a seed row.
CREATE TABLE "note" ("id" SERIAL PRIMARY KEY, "body" TEXT NOT NULL, "touched" INTEGER NOT NULL DEFAULT 0);

CREATE FUNCTION note_touch() RETURNS trigger LANGUAGE plpgsql AS $fn1$
BEGIN
  NEW.touched := NEW.touched + 1;
  RETURN NEW;
END;
$fn1$;

CREATE TRIGGER note_touch BEFORE INSERT ON "note" FOR EACH ROW EXECUTE FUNCTION note_touch();

INSERT INTO "note" ("body") VALUES (E'it\\'s; seeded');
INSERT INTO "note" ("body") VALUES ('plain');
`;

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe('splitSqlStatements', () => {
  it('keeps a dollar-quoted body whose tag holds a digit, and an escape string, whole', () => {
    expect(splitSqlStatements(APP_SQL)).toEqual([
      'CREATE TABLE "note" ("id" SERIAL PRIMARY KEY, "body" TEXT NOT NULL, "touched" INTEGER NOT NULL DEFAULT 0)',
      'CREATE FUNCTION note_touch() RETURNS trigger LANGUAGE plpgsql AS $fn1$\nBEGIN\n  NEW.touched := NEW.touched + 1;\n  RETURN NEW;\nEND;\n$fn1$',
      'CREATE TRIGGER note_touch BEFORE INSERT ON "note" FOR EACH ROW EXECUTE FUNCTION note_touch()',
      `INSERT INTO "note" ("body") VALUES (E'it\\'s; seeded')`,
      `INSERT INTO "note" ("body") VALUES ('plain')`,
    ]);
  });
});

describe.skipIf(pgUnavailable !== null)('migrate({ migrationsDir }) on PostgreSQL', () => {
  it("applies an app migration holding a `$fn1$` function body and an E'…' string", async () => {
    const db = await createPgDatabase('mno_adapter_prisma_appsql');
    const prisma = openPgPrisma(db.url);
    const dir = mkdtempSync(join(tmpdir(), 'mno-app-migrations-'));
    cleanups.push(async () => {
      rmSync(dir, { recursive: true, force: true });
      await prisma.$disconnect();
      await db.drop();
    });
    mkdirSync(join(dir, '20270101000000_notes'));
    writeFileSync(join(dir, '20270101000000_notes', 'migration.sql'), APP_SQL);
    expect(await migrate({ prisma, migrationsDir: dir })).toEqual({ applied: ['20270101000000_notes'], skipped: [] });
    const raw = new pg.Client({ connectionString: db.url });
    await raw.connect();
    try {
      const { rows } = await raw.query('SELECT body, touched FROM note ORDER BY id');
      expect(rows).toEqual([
        { body: "it's; seeded", touched: 1 },
        { body: 'plain', touched: 1 },
      ]);
    } finally {
      await raw.end();
    }
  });
});
