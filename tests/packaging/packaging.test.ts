/**
 * What users install is the npm tarball, not this monorepo: every other test resolves the
 * packages to their TypeScript sources (the `@org/source` condition). This one packs each
 * package with `npm pack`, installs the tarballs into a scratch app (their third-party
 * dependencies linked from this repository's node_modules, only those each package.json
 * declares), and checks the app as an integrator would build it: the files shipped, the imports
 * the built code makes, the entry points under plain Node, the declarations under a strict
 * NodeNext tsconfig with skipLibCheck off, and the guides' scenario against the sandbox, run
 * on the installed dist/ by vitest without any source condition.
 */
import { execFile } from 'node:child_process';
import { builtinModules } from 'node:module';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FerretDbServer, findFerretDb } from '../../packages/adapter-mongo/test/ferretdb.js';
import { ensureBuilt, PACKAGE_DIRS, repoRoot } from '../../scripts/ensure-built.js';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));

interface Manifest {
  name: string;
  main?: string;
  types?: string;
  bin?: string | Record<string, string>;
  exports?: Record<string, string | Record<string, string>>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

interface Pack {
  dir: string;
  manifest: Manifest;
  tarball: string;
  /** Paths inside the tarball, relative to the package root. */
  files: string[];
}

/** The app's own dependencies (its web framework, test runner, compiler, Prisma client). */
const APP_DEPENDENCIES = ['hono', '@hono/node-server', 'mongodb', 'typescript', '@types/node', 'vitest', 'prisma', '@prisma/client', '@prisma/adapter-better-sqlite3', 'better-sqlite3'];

let work = '';
let app = '';
const packs: Pack[] = [];
/** The MongoDB-wire server for the installed adapter-mongo (FerretDB), or why there is none. */
let mongo: FerretDbServer | null = null;
let mongoUnavailable: string | null = null;

/** Where `dep` is installed for code in `fromDir` (node's lookup, up to the repository root). */
function installedDir(dep: string, fromDir: string): string {
  for (let dir = fromDir; dir.startsWith(repoRoot); dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', dep);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === repoRoot) break;
  }
  throw new Error(`${dep} is not installed for ${relative(repoRoot, fromDir) || '.'}: run npm ci`);
}

function link(dep: string, target: string) {
  const path = join(app, 'node_modules', dep);
  if (existsSync(path)) return;
  mkdirSync(dirname(path), { recursive: true });
  symlinkSync(target, path, 'dir');
}

/** Every file an export condition (other than our private `@org/source`), main, types or bin names. */
function entryFiles(manifest: Manifest): string[] {
  const out: string[] = [];
  const add = (p: string | undefined) => p && out.push(p.replace(/^\.\//, ''));
  add(manifest.main);
  add(manifest.types);
  if (typeof manifest.bin === 'string') add(manifest.bin);
  else for (const p of Object.values(manifest.bin ?? {})) add(p);
  for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
    if (subpath === './package.json') continue;
    if (typeof target === 'string') add(target);
    else for (const [condition, p] of Object.entries(target)) if (condition !== '@org/source') add(p);
  }
  return [...new Set(out)];
}

/** Bare module specifiers a built file imports (static, dynamic and re-exports). */
function bareSpecifiers(code: string): string[] {
  const found = new Set<string>();
  // `from` of an import, not a property or variable named so (`data["from"]`, `x.from`), and
  // a specifier, which never holds whitespace: built code is not parsed, only scanned.
  const patterns = [/(?<![\w$."'[])from\s*["']([^"'./\s][^"'\s]*)["']/g, /\bimport\s*\(\s*["']([^"'./][^"']*)["']\s*\)/g, /^\s*import\s*["']([^"'./][^"']*)["']/gm, /\brequire\(\s*["']([^"'./][^"']*)["']\s*\)/g];
  for (const pattern of patterns) for (const m of code.matchAll(pattern)) if (m[1]) found.add(m[1]);
  return [...found];
}

const packageName = (specifier: string) => (specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : (specifier.split('/')[0] ?? specifier));
const isBuiltin = (specifier: string) => specifier.startsWith('node:') || builtinModules.includes(packageName(specifier));

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name));
}

/** Every public specifier: `@org/x` and `@org/x/sub` for each exports subpath. */
function entryPoints(): string[] {
  return packs.flatMap(({ manifest }) =>
    Object.keys(manifest.exports ?? { '.': '' })
      .filter((subpath) => subpath !== './package.json')
      .map((subpath) => (subpath === '.' ? manifest.name : `${manifest.name}/${subpath.slice(2)}`)),
  );
}

beforeAll(async () => {
  console.log(`packages' dist/: ${await ensureBuilt()}`);
  work = mkdtempSync(join(tmpdir(), 'org-packaging-'));
  // One `npm pack` for every package (each workspace packed as on its own, one npm start-up).
  const workspaces = PACKAGE_DIRS.flatMap((dir) => ['--workspace', `packages/${dir}`]);
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work, ...workspaces], { cwd: repoRoot, maxBuffer: 16 * 1024 * 1024 });
  const infos = JSON.parse(stdout) as Array<{ name: string; filename: string; files: Array<{ path: string }> }>;
  for (const dir of PACKAGE_DIRS) {
    const pkgDir = join(repoRoot, 'packages', dir);
    const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as Manifest;
    const info = infos.find((i) => i.name === manifest.name);
    if (!info) throw new Error(`npm pack printed nothing for packages/${dir}`);
    packs.push({ dir, manifest, tarball: join(work, info.filename), files: info.files.map((f) => f.path) });
  }

  // The app: the fixture files, the guides' code (docs/snippets), the tarballs, the dependencies.
  app = join(work, 'app');
  cpSync(join(here, 'consumer'), app, { recursive: true });
  const snippets = join(repoRoot, 'docs', 'snippets');
  for (const file of readdirSync(snippets)) if (file.endsWith('.ts')) cpSync(join(snippets, file), join(app, 'src', file));
  for (const pack of packs) {
    const target = join(app, 'node_modules', pack.manifest.name);
    mkdirSync(target, { recursive: true });
    await run('tar', ['xzf', pack.tarball, '-C', target, '--strip-components=1']);
  }
  const ours = new Set(packs.map((p) => p.manifest.name));
  const linked = new Map<string, string>();
  const want = (dep: string, fromDir: string) => {
    if (ours.has(dep)) return;
    const target = installedDir(dep, fromDir);
    const previous = linked.get(dep);
    if (previous && previous !== target) throw new Error(`${dep} resolves to two installs (${previous}, ${target}); the scratch app can hold one`);
    linked.set(dep, target);
    link(dep, target);
  };
  for (const pack of packs) {
    const { dependencies = {}, peerDependencies = {}, optionalDependencies = {} } = pack.manifest;
    for (const dep of Object.keys({ ...dependencies, ...peerDependencies, ...optionalDependencies })) want(dep, join(repoRoot, 'packages', pack.dir));
  }
  for (const dep of APP_DEPENDENCIES) want(dep, join(repoRoot, 'docs'));

  // The integrator's Prisma client: a datasource and generator, then the package's fragment verbatim.
  const fragment = readFileSync(join(app, 'node_modules', '@org', 'maestrano-adapter-prisma', 'prisma', 'schema.prisma'), 'utf8');
  mkdirSync(join(app, 'prisma'));
  const header = 'datasource db {\n  provider = "sqlite"\n}\n\ngenerator client {\n  provider            = "prisma-client"\n  output              = "../generated"\n  moduleFormat        = "esm"\n  importFileExtension = "js"\n}\n\n';
  writeFileSync(join(app, 'prisma', 'schema.prisma'), header + fragment);
  // `generate` needs no schema engine; pointing it at /bin/true keeps the CLI from downloading one.
  await run(process.execPath, [join(app, 'node_modules', 'prisma', 'build', 'index.js'), 'generate', '--schema', 'prisma/schema.prisma'], {
    cwd: app,
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? '/bin/true', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
  });
});

afterAll(async () => {
  await mongo?.destroy();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the npm tarballs', () => {
  it('ship every entry point, declaration and bin they name, a README, and no sources or tests', () => {
    const problems: string[] = [];
    for (const { manifest, files } of packs) {
      for (const file of entryFiles(manifest)) if (!files.includes(file)) problems.push(`${manifest.name}: ${file} is named in package.json but not packed`);
      if (!files.includes('README.md')) problems.push(`${manifest.name}: no README.md`);
      for (const file of files) {
        if (/^(src|test|tests|bench)\//.test(file) || /\.test\.[cm]?[jt]s$/.test(file)) problems.push(`${manifest.name}: ships ${file}`);
      }
    }
    expect(problems).toEqual([]);
    expect(packs.map((p) => p.manifest.name).sort()).toEqual(['@org/connec-client', '@org/maestrano-adapter-mongo', '@org/maestrano-adapter-prisma', '@org/maestrano-sandbox', '@org/maestrano-sdk']);
  });

  it('documents shipped in a tarball link only to files shipped with them', () => {
    const broken: string[] = [];
    for (const { manifest, files } of packs) {
      for (const doc of files.filter((f) => f.endsWith('.md'))) {
        const text = readFileSync(join(app, 'node_modules', manifest.name, doc), 'utf8');
        for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
          const target = m[1] ?? '';
          if (/^[a-z]+:/i.test(target) || target.startsWith('#')) continue;
          const path = join(dirname(doc), decodeURIComponent(target.split('#')[0] ?? '')).replace(/\/$/, '');
          if (!files.includes(path) && !files.some((f) => f.startsWith(`${path}/`))) broken.push(`${manifest.name}/${doc} -> ${target}`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('documents shipped in a tarball cite no file or section that is not shipped with them', () => {
    // A reader of the installed package cannot open the repository's design notes or guides.
    const cited: string[] = [];
    for (const { manifest, files } of packs) {
      for (const doc of files.filter((f) => f.endsWith('.md'))) {
        const text = readFileSync(join(app, 'node_modules', manifest.name, doc), 'utf8');
        for (const m of text.matchAll(/(?<![\w:/.-])([\w./-]*[A-Za-z]\.md)\b/g)) {
          const target = m[1] ?? '';
          if (!files.includes(join(dirname(doc), target)) && !files.includes(join(target))) cited.push(`${manifest.name}/${doc}: ${target}`);
        }
        for (const m of text.matchAll(/\b(?:PROTOCOL|ARCHITECTURE|ENVIRONMENT) ?§[\d.]*/g)) cited.push(`${manifest.name}/${doc}: ${m[0]}`);
      }
    }
    expect(cited).toEqual([]);
  });

  it("adapter-prisma ships its schema fragment and every migration of both providers", () => {
    const pack = packs.find((p) => p.dir === 'adapter-prisma');
    expect(pack?.files).toContain('prisma/schema.prisma');
    for (const provider of ['postgresql', 'sqlite']) {
      const source = join(repoRoot, 'packages', 'adapter-prisma', 'prisma', 'migrations', provider);
      const expected = filesUnder(source).map((f) => `prisma/migrations/${provider}/${relative(source, f)}`);
      expect(expected).toContain(`prisma/migrations/${provider}/migration_lock.toml`);
      expect(pack?.files.filter((f) => f.startsWith(`prisma/migrations/${provider}/`)).sort()).toEqual(expected.sort());
    }
  });

  it('built code and declarations import only node builtins and what package.json declares', () => {
    const undeclared: string[] = [];
    for (const { manifest } of packs) {
      const root = join(app, 'node_modules', manifest.name);
      const declared = new Set([manifest.name, ...Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies, ...manifest.optionalDependencies })]);
      for (const file of filesUnder(join(root, 'dist')).filter((f) => /\.(js|d\.ts)$/.test(f))) {
        for (const specifier of bareSpecifiers(readFileSync(file, 'utf8'))) {
          if (!isBuiltin(specifier) && !declared.has(packageName(specifier))) undeclared.push(`${manifest.name}/${relative(root, file)} imports ${specifier}`);
        }
      }
    }
    expect(undeclared).toEqual([]);
  });
});

describe('an app that installs them', () => {
  it('loads every entry point under plain Node, with the exports the sources have', async () => {
    const entries = entryPoints();
    expect(entries.length).toBeGreaterThanOrEqual(8);
    const { stdout } = await run(process.execPath, ['list-exports.mjs', ...entries], { cwd: app, maxBuffer: 16 * 1024 * 1024 });
    const installed = JSON.parse(stdout) as Record<string, string[]>;
    for (const entry of entries) {
      // Here the same specifier resolves to the TypeScript sources (the `@org/source` condition).
      const source = Object.keys(await import(/* @vite-ignore */ entry)).sort();
      expect({ entry, exports: installed[entry] }).toEqual({ entry, exports: source });
    }
  });

  it('loads @org/maestrano-sdk/testing in an app without vitest (tests on node:test or Jest); only testing/storage needs it', async () => {
    // A second app: the sdk and connec-client tarballs and their dependencies, no optional peer.
    const bare = join(work, 'no-vitest');
    const wanted = ['@org/maestrano-sdk', '@org/connec-client'];
    for (const name of wanted) {
      const pack = packs.find((p) => p.manifest.name === name);
      if (!pack) throw new Error(`${name} was not packed`);
      const target = join(bare, 'node_modules', name);
      mkdirSync(target, { recursive: true });
      await run('tar', ['xzf', pack.tarball, '-C', target, '--strip-components=1']);
      for (const dep of Object.keys(pack.manifest.dependencies ?? {})) {
        const path = join(bare, 'node_modules', dep);
        if (wanted.includes(dep) || existsSync(path)) continue;
        mkdirSync(dirname(path), { recursive: true });
        symlinkSync(installedDir(dep, join(repoRoot, 'packages', pack.dir)), path, 'dir');
      }
    }
    writeFileSync(
      join(bare, 'probe.mjs'),
      [
        "const out = {};",
        "const { createTestIdp } = await import('@org/maestrano-sdk/testing');",
        "const idp = createTestIdp();",
        "const xml = Buffer.from(idp.response({ uid: 'usr-1', email: 'a@b.c', groupUid: 'cld-1' }, { acsUrl: 'http://127.0.0.1:9/acs' }), 'base64').toString();",
        "out.signed = xml.includes('SignatureValue') && xml.includes('usr-1');",
        "out.storage = await import('@org/maestrano-sdk/testing/storage').then(() => 'loaded', (e) => e.code);",
        'console.log(JSON.stringify(out));',
      ].join('\n'),
    );
    const { stdout } = await run(process.execPath, ['probe.mjs'], { cwd: bare });
    // The conformance suite fails to load here: the app really has no vitest.
    expect(JSON.parse(stdout)).toEqual({ signed: true, storage: 'ERR_MODULE_NOT_FOUND' });
  });

  it('loads every entry point from a CommonJS app through require() (Node 20.19 and later)', async (ctx) => {
    if (!(process.features as { require_module?: boolean }).require_module) {
      console.log(`skipped: Node ${process.version} cannot require() ES modules (20.19 and later can)`);
      ctx.skip();
    }
    const entries = entryPoints();
    const run2 = (script: string) => run(process.execPath, ['--no-warnings', script, ...entries], { cwd: app, maxBuffer: 16 * 1024 * 1024 });
    const [esm, cjs] = await Promise.all([run2('list-exports.mjs'), run2('list-exports.cjs')]);
    // No top-level await anywhere (require() refuses such a module) and the same names.
    expect(JSON.parse(cjs.stdout)).toEqual(JSON.parse(esm.stdout));
  });

  it('type-checks against the published declarations (strict, skipLibCheck off; NodeNext with and without the DOM lib, bundler, node10)', async () => {
    const tsc = join(app, 'node_modules', 'typescript', 'bin', 'tsc');
    const configs = ['tsconfig.json', 'tsconfig.server.json', 'tsconfig.bundler.json', 'tsconfig.node10.json'];
    const check = (args: string[]) =>
      run(process.execPath, [tsc, ...args], { cwd: app }).then(
        () => ({ code: 0, output: '' }),
        (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, output: `${error.stdout}${error.stderr}` }),
      );
    // One `tsc --build` checks the four projects, each with its own options, and reads and
    // parses a declaration file once for all of them (four `tsc -p` did it four times);
    // `--force`: every project is checked, whatever a build info file says.
    const all = await check(['--build', '--force', ...configs]);
    if (all.code !== 0) {
      // Name the configurations that fail: `tsc -p` each.
      for (const config of configs) expect({ config, ...(await check(['-p', config])) }).toEqual({ config, code: 0, output: '' });
    }
    expect(all).toEqual({ code: 0, output: '' });
  });

  it("passes the guides' sandbox scenario, adapter-prisma on SQLite and adapter-mongo, run by vitest on the installed dist/", async () => {
    const mongoUrl = process.env.MONGODB_URL ?? process.env.MAESTRANO_TEST_MONGO_URL;
    const binary = mongoUrl ? null : findFerretDb();
    if (!mongoUrl && !binary) {
      mongoUnavailable = 'ferretdb binary not found (run scripts/install-ferretdb.sh, or set MONGODB_URL)';
      if (process.env.CI) throw new Error(`packaging: ${mongoUnavailable}; CI must run the adapter-mongo check`);
      console.log(`adapter-mongo check skipped: ${mongoUnavailable}`);
    }
    if (binary) mongo = await FerretDbServer.launch(binary);
    const url = mongoUrl ?? mongo?.url;
    const report = join(work, 'vitest-report.json');
    const result = await run(process.execPath, [join(app, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--reporter=json', `--outputFile=${report}`], {
      cwd: app,
      env: { ...process.env, CI: 'true', ...(url ? { PACKAGING_MONGO_URL: url } : {}) },
      maxBuffer: 64 * 1024 * 1024,
    }).then(
      () => null,
      (error: { stdout: string; stderr: string }) => `${error.stdout}\n${error.stderr}`.slice(-4000),
    );
    expect(result).toBeNull();
    const json = JSON.parse(readFileSync(report, 'utf8')) as {
      numFailedTests: number;
      testResults: Array<{ name: string; assertionResults: Array<{ title: string; status: string }> }>;
    };
    const outcomes = json.testResults.flatMap((file) => file.assertionResults.map((t) => `${relative(app, file.name)} > ${t.title}: ${t.status}`)).sort();
    expect(outcomes).toEqual([
      `src/mongo.test.ts > the storage contract works through the installed adapter-mongo: ${mongoUnavailable ? 'skipped' : 'passed'}`,
      'src/prisma-sqlite.test.ts > migrate() applies the migrations shipped in the package, once: passed',
      'src/prisma-sqlite.test.ts > the storage contract works on the migrated tables: passed',
      'src/sandbox.test.ts > provisions, imports, bills, syncs both ways and honours cancellation: passed',
      'src/session-outage.test.ts > answers a signed-in request with a "try again" page, not a 500, and keeps the session: passed',
    ]);
  });
});
