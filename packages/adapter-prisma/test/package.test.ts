// The published surface stays consistent: every exports subpath has a build entry and
// source file, and the files list ships the schema fragment and the migrations.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import tsup from '../tsup.config.js';
import { migrationsDirectory, schemaFragmentPath } from '../src/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, string | Record<string, string>>;
  files: string[];
};

it('exports map and tsup entries name the same modules', () => {
  const config = Array.isArray(tsup) ? tsup[0] : tsup;
  const entries = typeof config === 'object' && config !== null && 'entry' in config ? config.entry : undefined;
  expect(entries).toEqual({ index: 'src/index.ts' });
  const main = pkg.exports['.'];
  expect(main).toEqual({ '@org/source': './src/index.ts', types: './dist/index.d.ts', default: './dist/index.js' });
  expect(existsSync(join(root, 'src/index.ts'))).toBe(true);
});

it('ships the schema fragment and both providers’ migrations', () => {
  expect(pkg.files).toEqual(expect.arrayContaining(['dist', 'prisma', 'README.md']));
  expect(existsSync(schemaFragmentPath())).toBe(true);
  for (const provider of ['postgresql', 'sqlite'] as const) {
    const dir = migrationsDirectory(provider);
    expect(readFileSync(join(dir, 'migration_lock.toml'), 'utf8')).toContain(`provider = "${provider}"`);
    expect(existsSync(join(dir, '20261128000000_maestrano_init', 'migration.sql'))).toBe(true);
  }
});
