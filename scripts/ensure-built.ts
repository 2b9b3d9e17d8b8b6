/**
 * Tests that need the built packages (the sandbox's CLI test, the packaging test) call
 * `ensureBuilt` first: it runs the root build when a package's dist/ is missing or older than
 * its sources, so they always test the current code, and never builds twice at once (vitest
 * runs projects in parallel processes, and two tsup runs writing one dist/ corrupt it).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The publishable packages, by directory under packages/. */
export const PACKAGE_DIRS = ['connec-client', 'sdk', 'adapter-prisma', 'adapter-mongo', 'sandbox'] as const;

/** Modification times of the files at `path` (one file, or every file under a folder); [] when missing. */
function fileMtimes(path: string): number[] {
  if (!existsSync(path)) return [];
  const stat = statSync(path);
  if (!stat.isDirectory()) return [stat.mtimeMs];
  return readdirSync(path, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => statSync(join(entry.parentPath, entry.name)).mtimeMs);
}

/** Packages whose dist/ is missing or older than their src/, package.json or tsup config. */
export function stalePackages(dirs: readonly string[] = PACKAGE_DIRS): string[] {
  return dirs.filter((dir) => {
    const pkg = join(repoRoot, 'packages', dir);
    const built = fileMtimes(join(pkg, 'dist'));
    if (built.length === 0) return true;
    const inputs = ['src', 'package.json', 'tsup.config.ts'].flatMap((input) => fileMtimes(join(pkg, input)));
    return Math.max(0, ...inputs) > Math.min(...built);
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Builds every package (through turbo, `npm run build`) unless all of `dirs` are up to date.
 * A lock directory in node_modules/.cache keeps concurrent callers to one build; a lock left by
 * a dead process is taken over. Returns what it did, for the test's log.
 */
export async function ensureBuilt(dirs: readonly string[] = PACKAGE_DIRS, timeoutMs = 300_000): Promise<'up to date' | 'built'> {
  if (stalePackages(dirs).length === 0) return 'up to date';
  const lock = join(repoRoot, 'node_modules', '.cache', 'org-build.lock');
  mkdirSync(dirname(lock), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(existsSync(join(lock, 'pid')) ? readFileSync(join(lock, 'pid'), 'utf8') : 'NaN');
      if (Number.isInteger(holder) && !pidAlive(holder)) rmSync(lock, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`ensureBuilt: another build (pid ${holder}) held ${lock} for ${timeoutMs} ms`);
      else await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  try {
    // Another process may have built while this one waited for the lock.
    if (stalePackages(dirs).length === 0) return 'up to date';
    await run('npm', ['run', 'build'], { cwd: repoRoot, timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024 });
    // turbo may answer from its cache without rewriting dist/ (sources touched, not changed).
    if (stalePackages(dirs).length > 0) await run('npm', ['run', 'build', '--', '--force'], { cwd: repoRoot, timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024 });
    const still = stalePackages(dirs);
    if (still.length > 0) throw new Error(`ensureBuilt: dist/ still older than the sources after the build: ${still.join(', ')}`);
    return 'built';
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
