/**
 * Runs the README's mounting examples (packages/sdk/examples) as real processes and logs in
 * through them with the test IdP: the documented set-up works as written.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testIdp } from './harness.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function start(script: string, configFile: string, port: number): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--conditions=@org/source', '--import', 'tsx', join(EXAMPLES, script), configFile, String(port)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`${script} did not start: ${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /app on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1]! });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code}: ${output}`));
    });
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mno-examples-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('README mounting examples', () => {
  for (const script of ['node-http.ts', 'hono.ts']) {
    it(`${script}: SSO login sets the app session, the home page re-checks it, logout goes to the IdP`, async () => {
      const idp = testIdp();
      const port = await freePort();
      const appHost = `http://127.0.0.1:${port}`;
      const configFile = join(dir, `${script}.maestrano.json`);
      const marketplace = idp.marketplace({ name: 'example-market', appHost, apiId: 'app-example', apiKey: 'example-key' });
      await writeFile(configFile, JSON.stringify({ marketplaces: [marketplace] }));
      const { child, url } = await start(script, configFile, port);
      try {
        expect(url).toBe(appHost);
        const init = await fetch(`${url}/maestrano/auth/saml/init/example-market?group_id=cld-ex`, { redirect: 'manual' });
        expect(init.status).toBe(302);
        const binding = init.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
        const { samlResponse, acsUrl } = idp.respondTo(init.headers.get('location')!, {
          uid: 'usr-ex',
          email: 'ex@example.com',
          groupUid: 'cld-ex',
          groupName: 'Example Co',
        });
        const consume = await fetch(acsUrl, {
          method: 'POST',
          body: new URLSearchParams({ SAMLResponse: samlResponse }),
          headers: { cookie: binding },
          redirect: 'manual',
        });
        expect(consume.status).toBe(302);
        expect(consume.headers.get('location')).toBe('/');
        const sid = consume.headers.getSetCookie().find((c) => c.startsWith('sid='))?.split(';')[0];
        expect(sid).toMatch(/^sid=[A-Za-z0-9_-]{32}$/);

        const home = await fetch(`${url}/`, { headers: { cookie: sid! } });
        expect(home.status).toBe(200);
        expect(await home.text()).toBe('Hello John Doe (Example Co)');
        const anonymous = await fetch(`${url}/`);
        expect(anonymous.status).toBe(401);
        await anonymous.body?.cancel();

        const logout = await fetch(`${url}/logout`, { headers: { cookie: sid! }, redirect: 'manual' });
        expect(logout.headers.get('location')).toBe(`${idp.issuer}/app_logout?user_uid=usr-ex`);
        const after = await fetch(`${url}/`, { headers: { cookie: sid! } });
        expect(after.status).toBe(401);
        await after.body?.cancel();
      } finally {
        child.kill('SIGTERM');
      }
    });
  }
});
