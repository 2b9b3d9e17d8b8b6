/**
 * Each package's `engines.node` must not promise a Node.js its dependencies refuse: the
 * lowest Node of every range it lists (20.11 of `>=20.11`, 20.19 and 22.12 of
 * `^20.19 || ^22.12 || >=24`) must satisfy the `engines.node` of each installed dependency and
 * peer dependency (Prisma 7 and the MongoDB 7 driver need 20.19). And the Node.js running CI
 * must satisfy every package's range.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
type Version = [number, number, number];

interface Manifest {
  name: string;
  engines?: { node?: string };
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Manifest;

function parseVersion(text: string): Version {
  const [major = 0, minor = 0, patch = 0] = text.replace(/^v/, '').split('.').map((p) => (p === 'x' ? 0 : Number(p)));
  return [major, minor, patch];
}
const compare = (a: Version, b: Version) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];

/** One comparator set of the forms npm packages use for `engines.node` (`>=X.Y`, `^X.Y`, `X.x`, `X.Y.Z`). */
function parseSet(set: string): { low: Version; test: (v: Version) => boolean } {
  const parts = set.trim().replace(/(>=|<=|>|<|\^)\s+/g, '$1').split(/\s+/);
  const tests: ((v: Version) => boolean)[] = [];
  let low: Version = [0, 0, 0];
  for (const part of parts) {
    const m = /^(>=|\^|<|)v?(\d+(?:\.(?:\d+|x))?(?:\.(?:\d+|x))?)$/.exec(part);
    if (!m) throw new Error(`unsupported range part ${JSON.stringify(part)} in ${JSON.stringify(set)}`);
    const [, op, text = ''] = m;
    const v = parseVersion(text);
    if (op === '>=') {
      tests.push((x) => compare(x, v) >= 0);
      low = v;
    } else if (op === '<') {
      tests.push((x) => compare(x, v) < 0);
    } else if (op === '^' || text.endsWith('x') || text.split('.').length < 3) {
      tests.push((x) => x[0] === v[0] && compare(x, v) >= 0);
      low = v;
    } else {
      tests.push((x) => compare(x, v) === 0);
      low = v;
    }
  }
  return { low, test: (x) => tests.every((t) => t(x)) };
}

const parseRange = (range: string) => range.split('||').map(parseSet);
const satisfies = (v: Version, range: string) => parseRange(range).some((s) => s.test(v));

/** Where `dep` is installed for the package in `dir` (its own node_modules, then the root's). */
function installed(dep: string, dir: string): Manifest | null {
  for (const base of [join(dir, 'node_modules'), join(repoRoot, 'node_modules')]) {
    const path = join(base, dep, 'package.json');
    if (existsSync(path)) return readJson(path);
  }
  return null;
}

const packages = readdirSync(join(repoRoot, 'packages')).map((name) => {
  const dir = join(repoRoot, 'packages', name);
  return { dir, manifest: readJson(join(dir, 'package.json')) };
});

describe('engines.node of the published packages', () => {
  it.each(packages.map((p) => [p.manifest.name, p] as const))('%s promises no Node.js its dependencies refuse', (_name, { dir, manifest }) => {
    const range = manifest.engines?.node;
    expect(range).toBeDefined();
    const lows = parseRange(range ?? '').map((s) => s.low);
    const refused: string[] = [];
    for (const dep of Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies })) {
      const needs = installed(dep, dir)?.engines?.node;
      if (!needs) continue;
      for (const low of lows) if (!satisfies(low, needs)) refused.push(`${dep} needs node ${needs}, the package allows ${low.join('.')}`);
    }
    expect(refused).toEqual([]);
  });

  it.each(packages.map((p) => [p.manifest.name, p] as const))('%s accepts the Node.js running these tests', (_name, { manifest }) => {
    expect(satisfies(parseVersion(process.versions.node), manifest.engines?.node ?? '')).toBe(true);
  });

  it('the range reader agrees with npm on the ranges in use', () => {
    expect(satisfies([20, 11, 0], '^20.19 || ^22.12 || >=24.0')).toBe(false);
    expect(satisfies([22, 11, 0], '^20.19 || ^22.12 || >=24.0')).toBe(false);
    expect(satisfies([23, 0, 0], '^20.19 || ^22.12 || >=24.0')).toBe(false);
    expect(satisfies([22, 12, 0], '^20.19 || ^22.12 || >=24.0')).toBe(true);
    expect(satisfies([20, 20, 2], '>=20.19.0')).toBe(true);
    expect(satisfies([20, 11, 0], '>= 18')).toBe(true);
    expect(satisfies([21, 0, 0], '20.x || 22.x')).toBe(false);
  });
});
