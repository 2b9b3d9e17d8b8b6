// `operationTimeoutMs` goes to a timer: Node fires a delay above 2^31-1 ms after 1 ms, so a
// long bound (a month, "practically none") made every storage operation fail at once as
// "timed out ... (database unreachable or overloaded)". It is refused, like 0 < bounds elsewhere.
import { ConfigError } from '@org/maestrano-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prismaAdapter } from '../src/index.js';
import { migratedSqlite, type SqliteFile } from './backends.js';

let file: SqliteFile;
let prisma: Awaited<ReturnType<typeof migratedSqlite>>['prisma'];

beforeAll(async () => {
  ({ file, prisma } = await migratedSqlite());
});
afterAll(async () => {
  await prisma.$disconnect();
  file.remove();
});

describe('prismaAdapter operationTimeoutMs bounds', () => {
  it('a bound no timer can hold is refused, not turned into a 1 ms timeout on every operation', async () => {
    expect(() => prismaAdapter(prisma, { operationTimeoutMs: 31 * 86_400_000 })).toThrow(ConfigError);
    // The largest a timer holds still works, and 0 still disables the bound.
    for (const operationTimeoutMs of [2_147_483_647, 0]) {
      const adapter = prismaAdapter(prisma, { operationTimeoutMs });
      expect(await adapter.locks.acquire(`k-${operationTimeoutMs}`, 'me', 60_000)).toBe(true);
      await adapter.close();
    }
  });
});

describe('prismaAdapter first-day mistakes', () => {
  const refusal = (f: () => unknown): ConfigError | null => {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return err as ConfigError;
    }
    return null;
  };

  it('a misspelt provider is named as such, not "cannot tell the provider from this client; pass { provider }"', () => {
    const error = refusal(() => prismaAdapter(prisma, { provider: 'postgres' as never }));
    expect(error?.issues.map((i) => i.path)).toEqual(['provider']);
    expect(error?.message).toMatch(/provider must be 'postgresql' or 'sqlite'/);
    expect(error?.message).not.toMatch(/cannot tell/);
  });

  it('something that is not a Prisma client is a ConfigError naming the argument, not a TypeError', () => {
    for (const notAClient of [undefined, null, {}, Promise.resolve(prisma)]) {
      const error = refusal(() => prismaAdapter(notAClient as never, { provider: 'sqlite' }));
      expect(error?.issues.map((i) => i.path)).toEqual(['prisma']);
      expect(error?.message).toMatch(/Prisma 7 client/);
    }
  });

  it('a misspelt option key is refused by name instead of running with its default', () => {
    const error = refusal(() => prismaAdapter(prisma, { operationTimeout: 5_000, refreshStats: false } as never));
    expect(error?.issues.map((i) => i.path)).toEqual(['operationTimeout', 'refreshStats']);
    expect(error?.message).toMatch(/operationTimeout: unknown option \(expected one of clock, operationTimeoutMs, provider, refreshStatistics\)/);
    expect(refusal(() => prismaAdapter(prisma, { clock: 'now' } as never))?.issues.map((i) => i.path)).toEqual(['clock']);
    // Every documented key is still taken.
    expect(refusal(() => prismaAdapter(prisma, { provider: 'sqlite', operationTimeoutMs: 1_000, refreshStatistics: false, clock: () => new Date() }))).toBeNull();
  });
});
