// Unit tests: error mapping, provider detection, the SQL the adapter sends (query shapes)
// and the bounded-time guard, against a recording stand-in for the Prisma client.
import { ConfigError, StorageConflictError, StorageError } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { Executor, type PrismaClientLike } from './client.js';
import { isUniqueViolation, toStorageError } from './errors.js';
import { splitSqlStatements } from './migrate.js';
import { prismaAdapter } from './prisma-adapter.js';
import { inList, json, raw, render, sql, ts } from './sql.js';

interface Sent {
  text: string;
  values: unknown[];
}

/** A client that records every statement and answers with `reply(text)`. */
function recordingClient(reply: (text: string) => unknown = () => []): { client: PrismaClientLike; sent: Sent[] } {
  const sent: Sent[] = [];
  const client: PrismaClientLike = {
    async $queryRawUnsafe(text: string, ...values: unknown[]) {
      sent.push({ text, values });
      return reply(text);
    },
    async $executeRawUnsafe(text: string, ...values: unknown[]) {
      sent.push({ text, values });
      const answer = reply(text);
      return typeof answer === 'number' ? answer : 0;
    },
    async $transaction<R>(fn: (tx: PrismaClientLike) => Promise<R>) {
      return fn(client);
    },
  };
  return { client, sent };
}

describe('toStorageError', () => {
  it('maps Prisma P2002 to StorageConflictError naming the operation, with the driver error as cause', () => {
    const driver = Object.assign(new Error('Unique constraint failed on the fields: (`dedupe_key`)'), { code: 'P2002' });
    const error = toStorageError('jobs.enqueue', driver);
    expect(error).toBeInstanceOf(StorageConflictError);
    expect(error).toMatchObject({ code: 'storage_conflict', adapterId: 'prisma', operation: 'jobs.enqueue' });
    expect(error.cause).toBe(driver);
  });

  it('maps a raw-query failure carrying PostgreSQL 23505 or a SQLite unique code to a conflict', () => {
    const raw = Object.assign(new Error('Raw query failed. Code: `23505`.'), { code: 'P2010', meta: { code: '23505' } });
    expect(toStorageError('idMaps.insert', raw)).toBeInstanceOf(StorageConflictError);
    const nested = new Error('wrapped', { cause: { code: 'SQLITE_CONSTRAINT_UNIQUE', message: 'UNIQUE constraint failed' } });
    expect(isUniqueViolation(nested)).toBe(true);
    const adapterKind = Object.assign(new Error('x'), { cause: { kind: 'UniqueConstraintViolation' } });
    expect(isUniqueViolation(adapterKind)).toBe(true);
  });

  it('maps anything else to a plain StorageError with a one-line message', () => {
    const driver = new Error('\nInvalid `prisma.$queryRawUnsafe()` invocation:\n\n\nCan\'t reach database server at 127.0.0.1:1');
    const error = toStorageError('locks.acquire', driver);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).not.toBeInstanceOf(StorageConflictError);
    expect(error).toMatchObject({ code: 'storage_error', operation: 'locks.acquire', adapterId: 'prisma' });
    expect(error.message).toBe("locks.acquire failed: Can't reach database server at 127.0.0.1:1");
    expect(isUniqueViolation(new Error('connection refused'))).toBe(false);
  });

  it('never echoes credentials a driver message quotes', () => {
    const driver = new Error('connect failed for postgresql://app:s3cret@db.internal:5432/prod (password=s3cret)');
    const error = toStorageError('groups.get', driver);
    expect(error.message).not.toContain('s3cret');
    expect(error.message).toContain('postgresql://***@db.internal:5432/prod');
    expect(error.cause).toBe(driver);
  });

  it('passes StorageErrors through unchanged', () => {
    const original = new StorageError('x', { adapterId: 'prisma', operation: 'jobs.claim' });
    expect(toStorageError('jobs.get', original)).toBe(original);
  });
});

describe('SQL rendering', () => {
  const query = sql`SELECT * FROM t WHERE a = ${'x'} AND d <= ${ts(new Date(0))} AND j = ${json({ k: 1 }, false)}${raw(' LIMIT 1')}`;

  it('uses numbered, typed placeholders on PostgreSQL', () => {
    expect(render(query, 'postgresql')).toEqual({
      text: 'SELECT * FROM t WHERE a = $1 AND d <= $2::timestamp(3) AND j = $3::jsonb LIMIT 1',
      values: ['x', new Date(0), '{"k":1}'],
    });
  });

  it('uses ? placeholders on SQLite, repeating values instead of reusing numbers', () => {
    const twice = sql`${sql`a = ${1}`} OR b = ${1}`;
    expect(render(twice, 'sqlite')).toEqual({ text: 'a = ? OR b = ?', values: [1, 1] });
    expect(render(query, 'sqlite').text).toBe('SELECT * FROM t WHERE a = ? AND d <= ? AND j = ? LIMIT 1');
  });

  it('binds lists as one array on PostgreSQL and expands them on SQLite', () => {
    expect(render(inList(raw('c'), ['a', 'b'], 'postgresql'), 'postgresql')).toEqual({ text: 'c = ANY($1::text[])', values: [['a', 'b']] });
    expect(render(inList(raw('c'), ['a', 'b'], 'sqlite'), 'sqlite')).toEqual({ text: 'c IN (?, ?)', values: ['a', 'b'] });
  });

  it('stores JSON null as JSON in NOT NULL columns and as SQL NULL in nullable ones', () => {
    expect(render(sql`${json(null, false)}`, 'sqlite').values).toEqual(['null']);
    expect(render(sql`${json(null, true)}`, 'sqlite').values).toEqual([null]);
  });
});

describe('prismaAdapter', () => {
  it('refuses a client whose provider it cannot tell, unless given', () => {
    const { client } = recordingClient();
    expect(() => prismaAdapter(client)).toThrow(ConfigError);
    expect(prismaAdapter(client, { provider: 'sqlite' }).id).toBe('prisma');
    const generated = Object.assign(recordingClient().client, { _activeProvider: 'postgresql' });
    expect(prismaAdapter(generated).capabilities).toEqual({ transactions: false });
  });

  it('claims jobs on PostgreSQL in one statement: SKIP LOCKED candidates plus the ordering-key guard', async () => {
    const { client, sent } = recordingClient();
    const adapter = prismaAdapter(client, { provider: 'postgresql', clock: () => new Date(1_000) });
    expect(await adapter.jobs.claim({ worker: 'w1', limit: 5, leaseMs: 500, types: ['a'] })).toEqual([]);
    expect(sent).toHaveLength(1);
    const [statement] = sent;
    expect(statement?.text).toContain('FOR UPDATE OF j SKIP LOCKED');
    expect(statement?.text).toContain('INSERT INTO maestrano_job_guards');
    expect(statement?.text).toContain('j.type = ANY(');
    expect(statement?.values).toEqual(expect.arrayContaining(['w1', 5, ['a'], new Date(1_000), new Date(1_500)]));
  });

  it('claims jobs on SQLite with a single UPDATE … RETURNING', async () => {
    const { client, sent } = recordingClient();
    const adapter = prismaAdapter(client, { provider: 'sqlite', clock: () => new Date(1_000) });
    await adapter.jobs.claim({ worker: 'w1', limit: 2, leaseMs: 500 });
    expect(sent).toHaveLength(1);
    expect(sent[0]?.text.trim().startsWith('UPDATE maestrano_jobs SET status = \'running\'')).toBe(true);
    expect(sent[0]?.text).not.toContain('SKIP LOCKED');
  });

  it('rejects bad arguments before any SQL is sent', async () => {
    const { client, sent } = recordingClient();
    const adapter = prismaAdapter(client, { provider: 'postgresql' });
    await expect(adapter.jobs.claim({ worker: '', limit: 1, leaseMs: 1 })).rejects.toMatchObject({ operation: 'jobs.claim' });
    await expect(adapter.locks.acquire('k', 'o', 1.5)).rejects.toBeInstanceOf(StorageError);
    await expect(adapter.idMaps.insert({ tenant: 't', groupId: 'g', entity: 'e', connecId: null, localId: null })).rejects.toMatchObject({
      operation: 'idMaps.insert',
    });
    expect(sent).toEqual([]);
  });

  it('sends each batch operation as one statement, with the PostgreSQL ordering guard released on completeMany', async () => {
    const { client, sent } = recordingClient();
    const adapter = prismaAdapter(client, { provider: 'postgresql', clock: () => new Date(1_000) });
    const map = { tenant: 't', groupId: 'g', entity: 'e', connecId: 'c', localId: null };
    expect(await adapter.idMaps.insertMany([map, { ...map, connecId: 'd' }])).toEqual([null, null]);
    expect(await adapter.locks.acquireMany(['b', 'a', 'b'], 'owner-1', 500)).toEqual([]);
    expect(await adapter.locks.releaseMany(['a', 'b'], 'owner-1')).toBe(0);
    expect(await adapter.jobs.completeMany(['12', 'x', '12', '7'], 'w')).toEqual([]);
    expect(await adapter.jobs.wakeMany(['k1', 'k2'])).toBe(0);
    expect(sent).toHaveLength(5);
    const [insert, acquire, release, complete, wake] = sent;
    expect(insert?.text).toContain('ON CONFLICT DO NOTHING RETURNING');
    // One array per column, in input order: the statement does not grow with the batch.
    expect(insert?.text).toContain('unnest(');
    expect(insert?.values).toEqual(expect.arrayContaining([['t', 't'], ['c', 'd'], [null, null]]));
    expect(acquire?.text).toContain('ON CONFLICT ("key") DO UPDATE');
    // Sorted and without duplicates, as one array parameter.
    expect(acquire?.values).toEqual(expect.arrayContaining([['a', 'b'], 'owner-1']));
    expect(acquire?.text).toMatch(/unnest\(\$\d+::text\[\]\) WITH ORDINALITY/);
    expect(release?.values).toEqual(['owner-1', ['a', 'b']]);
    expect(complete?.text).toMatch(/id = ANY\(\$\d+::bigint\[\]\)/);
    expect(complete?.text).toContain('DELETE FROM maestrano_job_guards');
    expect(complete?.values).toEqual(expect.arrayContaining([['12', '7'], 'w']));
    expect(wake?.values).toEqual(expect.arrayContaining([['k1', 'k2']]));
    // A batch's lease renewal is one statement too, guards included.
    expect(await adapter.jobs.heartbeatMany(['3', '4', '3'], 'w', 500)).toEqual([]);
    expect(sent).toHaveLength(6);
    expect(sent[5]?.text).toContain('INSERT INTO maestrano_job_guards');
    expect(sent[5]?.text).toContain('FOR UPDATE');
    expect(sent[5]?.values).toEqual(expect.arrayContaining([['3', '4'], 'w']));
  });

  it('sends nothing for empty batches and rejects bad batch arguments before any SQL', async () => {
    const { client, sent } = recordingClient();
    const adapter = prismaAdapter(client, { provider: 'sqlite' });
    expect(await adapter.idMaps.insertMany([])).toEqual([]);
    expect(await adapter.locks.acquireMany([], 'o', 500)).toEqual([]);
    expect(await adapter.locks.releaseMany([], 'o')).toBe(0);
    expect(await adapter.jobs.completeMany(['nope', '-3'], 'w')).toEqual([]);
    expect(await adapter.jobs.wakeMany([])).toBe(0);
    expect(await adapter.jobs.heartbeatMany(['nope'], 'w', 500)).toEqual([]);
    const map = { tenant: 't', groupId: 'g', entity: 'e', connecId: 'c', localId: null };
    await expect(adapter.idMaps.insertMany([map, { ...map, tenant: '' }])).rejects.toMatchObject({ operation: 'idMaps.insertMany' });
    await expect(adapter.locks.acquireMany(['a', ''], 'o', 500)).rejects.toMatchObject({ operation: 'locks.acquireMany' });
    await expect(adapter.locks.acquireMany(['a'], '', 500)).rejects.toMatchObject({ operation: 'locks.acquireMany' });
    await expect(adapter.jobs.wakeMany(['k', ''])).rejects.toMatchObject({ operation: 'jobs.wakeMany' });
    expect(sent).toEqual([]);
  });

  it('treats ids that are not job ids as unknown jobs without querying', async () => {
    const { client, sent } = recordingClient();
    const adapter = prismaAdapter(client, { provider: 'postgresql' });
    expect(await adapter.jobs.get('not-a-number')).toBeNull();
    expect(await adapter.jobs.complete('1; DROP TABLE x', 'w')).toBe(false);
    expect(await adapter.jobs.fail('-1', 'w', { error: { message: 'x' }, retryAt: new Date() })).toBe('lost');
    expect(sent).toEqual([]);
  });

  it('translates driver failures into StorageError naming the operation', async () => {
    const { client } = recordingClient(() => {
      throw Object.assign(new Error('duplicate key value violates unique constraint'), { code: 'P2010', meta: { code: '23505' } });
    });
    const adapter = prismaAdapter(client, { provider: 'postgresql' });
    await expect(adapter.idMaps.insert({ tenant: 't', groupId: 'g', entity: 'e', connecId: 'c', localId: null })).rejects.toBeInstanceOf(
      StorageConflictError,
    );
  });
});

describe('Executor time bound', () => {
  it('fails a statement that never answers with StorageError naming the operation', async () => {
    const hanging: PrismaClientLike = {
      $queryRawUnsafe: () => new Promise(() => {}),
      $executeRawUnsafe: () => new Promise(() => {}),
      $transaction: () => new Promise(() => {}),
    };
    const executor = new Executor(hanging, 'postgresql', 50);
    const error = await executor.query('jobs.claim', sql`SELECT 1`).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ operation: 'jobs.claim', adapterId: 'prisma' });
    expect(error instanceof Error ? error.message : '').toContain('timed out');
  });
});

describe('splitSqlStatements', () => {
  it('splits at top-level semicolons only', () => {
    const script = `-- a comment; with a semicolon
CREATE TABLE "a;b" ("x" TEXT DEFAULT 'it''s; fine');
/* block; comment */ CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;

`;
    expect(splitSqlStatements(script)).toEqual([
      `CREATE TABLE "a;b" ("x" TEXT DEFAULT 'it''s; fine')`,
      'CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql',
    ]);
  });
});
