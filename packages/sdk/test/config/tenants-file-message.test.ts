/**
 * `tenantsFromFile` on a file it cannot read says why in its message (ENOENT: no such file …),
 * not only on `.cause`, which most loggers and stack traces leave out.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, tenantsFromFile } from '@org/maestrano-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mno-tenants-file-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('tenantsFromFile: an unreadable file', () => {
  it('puts the reason in the message and keeps it as the cause', async () => {
    const path = join(dir, 'nope.json');
    const error = await tenantsFromFile(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    const e = error as ConfigError;
    expect(e.message).toContain(`Cannot read the tenants file ${path}`);
    expect(e.message).toContain('ENOENT');
    expect(e.message).toContain('no such file or directory');
    expect((e.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
  });

  it('a directory: EISDIR in the message', async () => {
    const e = (await tenantsFromFile(dir).catch((x: unknown) => x)) as ConfigError;
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toContain('EISDIR');
  });
});

describe('tenantsFromFile: a document without marketplaces', () => {
  it('is a ConfigError, not a registry that answers 404 on every route', async () => {
    const path = join(dir, 'empty.json');
    await writeFile(path, '{"marketplaces":[]}');
    const e = (await tenantsFromFile(path).catch((x: unknown) => x)) as ConfigError;
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toContain('lists no marketplaces');
  });
});
