/**
 * @org/connec-client ships `examples/*.ts` in its npm tarball. Run from the installed package
 * (no `test/` directory), the quick start must not crash on an import of a file the tarball
 * does not have: without Connec! credentials it says which variables to set.
 * (Kept with the SDK's tests: it checks what an integrator of the SDK family installs.)
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const connecDir = join(repoRoot, 'packages/connec-client');
const work = mkdtempSync(join(tmpdir(), 'mno-connec-example-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('@org/connec-client examples as shipped', () => {
  it('the package ships the examples, and they import no relative file outside examples/', () => {
    const manifest = JSON.parse(readFileSync(join(connecDir, 'package.json'), 'utf8')) as { files: string[] };
    expect(manifest.files).toContain('examples/*.ts');
    const text = readFileSync(join(connecDir, 'examples/quickstart.ts'), 'utf8');
    const relative = [...text.matchAll(/(?:from\s+|import\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]);
    expect(relative.filter((specifier) => !specifier?.startsWith('./'))).toEqual([]);
  });

  it('run from an installed copy without credentials, it names the variables to set instead of crashing', async () => {
    // The installed layout: node_modules/@org/connec-client/{examples,…} without test/.
    const pkg = join(work, 'node_modules/@org/connec-client');
    mkdirSync(join(pkg, 'examples'), { recursive: true });
    cpSync(join(connecDir, 'examples/quickstart.ts'), join(pkg, 'examples/quickstart.ts'));
    cpSync(join(connecDir, 'package.json'), join(pkg, 'package.json'));
    // The package's own code and its dependencies, resolved from the repository.
    symlinkSync(join(connecDir, 'src'), join(pkg, 'src'));
    symlinkSync(join(repoRoot, 'node_modules'), join(pkg, 'node_modules'));
    const env = { ...process.env };
    for (const name of ['CONNEC_HOST', 'CONNEC_API_ID', 'CONNEC_API_KEY', 'CONNEC_GROUP_ID']) delete env[name];
    const result = await promisify(execFile)(process.execPath, ['--conditions=@org/source', '--import', 'tsx', join(pkg, 'examples/quickstart.ts')], {
      env,
      cwd: repoRoot,
    }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code?: number; stderr?: string }) => ({ code: error.code, stderr: error.stderr ?? '' }),
    );
    expect(result.stderr).not.toContain('ERR_MODULE_NOT_FOUND');
    expect(result.stderr).toContain('Set CONNEC_HOST, CONNEC_API_ID, CONNEC_API_KEY and CONNEC_GROUP_ID');
    expect(result.code).toBe(1);
  });
});
