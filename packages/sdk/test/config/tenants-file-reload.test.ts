/**
 * `tenantsFromFile(...).reload()`: a marketplace added to the file is served without a restart,
 * one removed is answered 404, and a file that went bad leaves the current tenants in place.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, createMaestrano, memoryAdapter, tenantsFromFile } from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordingLogger } from './helpers.js';

const certificates = new Map<string, string>();
const certificateOf = (name: string): string => {
  let pem = certificates.get(name);
  if (pem === undefined) {
    pem = createTestCertificate({ bits: 1024 }).certificate;
    certificates.set(name, pem);
  }
  return pem;
};
const marketplace = (name: string) => ({
  marketplace: name,
  app: { host: 'https://app.example.com' },
  api: { id: `app-${name}`, key: `secret-key-of-${name}`, host: 'https://api-hub-uat.maestrano.io' },
  sso: { x509_certificate: certificateOf(name) },
});
const documentOf = (names: string[]) => JSON.stringify({ marketplaces: names.map(marketplace) });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mno-tenants-reload-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function appOver(file: string) {
  const log = recordingLogger();
  const tenants = await tenantsFromFile(file, { logger: log.logger });
  const mno = createMaestrano({
    tenants,
    storage: memoryAdapter(),
    provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
    onLogin: () => new Response('ok'),
    logger: recordingLogger().logger,
  });
  // The metadata route asks for the marketplace's own API credentials.
  const metadata = async (name: string) => {
    const authorization = `Basic ${Buffer.from(`app-${name}:secret-key-of-${name}`).toString('base64')}`;
    return (await mno.handler(new Request(`https://app.example.com/maestrano/metadata/${name}`, { headers: { authorization } }))).status;
  };
  return { tenants, metadata, entries: log.entries };
}

describe('tenantsFromFile: reload()', () => {
  it('serves a marketplace added to the file, answers 404 for one removed, and logs the names (no secret)', async () => {
    const file = join(dir, 'added.json');
    await writeFile(file, documentOf(['acme']));
    const app = await appOver(file);
    expect(app.tenants.path).toBe(file);
    expect(await app.metadata('acme')).toBe(200);
    expect(await app.metadata('globex')).toBe(404);

    await writeFile(file, documentOf(['acme', 'globex']));
    // Not read until asked: the file is read once.
    expect(await app.metadata('globex')).toBe(404);
    await app.tenants.reload();
    expect(app.tenants.list().map((t) => t.name)).toEqual(['acme', 'globex']);
    expect(await app.metadata('globex')).toBe(200);
    expect(app.entries).toContainEqual({ level: 'info', message: 'maestrano: tenants refreshed', fields: { added: ['globex'], removed: [] } });

    await writeFile(file, documentOf(['globex']));
    await app.tenants.reload();
    expect(await app.metadata('acme')).toBe(404);
    expect(await app.metadata('globex')).toBe(200);
    expect(app.entries).toContainEqual({ level: 'info', message: 'maestrano: tenants refreshed', fields: { added: [], removed: ['acme'] } });
    expect(JSON.stringify(app.entries)).not.toContain('secret-key-of');
  });

  it('a file gone bad (invalid JSON, an invalid document, no marketplaces, removed) rejects with a ConfigError and keeps the current tenants', async () => {
    const file = join(dir, 'bad.json');
    await writeFile(file, documentOf(['acme', 'globex']));
    const app = await appOver(file);
    const bad: [string | null, RegExp][] = [
      ['{"marketplaces": [', /is not valid JSON/],
      [JSON.stringify({ marketplaces: [{ ...marketplace('acme'), api: { id: 'x' } }] }), /api/],
      [documentOf([]), /lists no marketplaces/],
      [null, /Cannot read the tenants file .*ENOENT/],
    ];
    for (const [content, message] of bad) {
      if (content === null) await rm(file);
      else await writeFile(file, content);
      const error = await app.tenants.reload().catch((e: unknown) => e);
      expect(error, String(content)).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toMatch(message);
      expect((error as ConfigError).message).not.toContain('secret-key-of');
      expect(app.tenants.list().map((t) => t.name)).toEqual(['acme', 'globex']);
      expect(await app.metadata('globex')).toBe(200);
    }
    // Fixed again: the next reload applies it.
    await writeFile(file, documentOf(['acme']));
    await app.tenants.reload();
    expect(await app.metadata('globex')).toBe(404);
  });

  it('reloads called together apply in call order: the last call reads the file as it was last written', async () => {
    const file = join(dir, 'order.json');
    await writeFile(file, documentOf(['acme']));
    const app = await appOver(file);
    const first = app.tenants.reload();
    await writeFile(file, documentOf(['acme', 'globex', 'initech']));
    const second = app.tenants.reload();
    await Promise.all([first, second]);
    expect(app.tenants.list().map((t) => t.name)).toEqual(['acme', 'globex', 'initech']);
    expect(await app.metadata('initech')).toBe(200);
  });

  it('a reload failing does not stop the next one', async () => {
    const file = join(dir, 'next.json');
    await writeFile(file, documentOf(['acme']));
    const app = await appOver(file);
    await writeFile(file, 'nope');
    const failed = app.tenants.reload();
    const next = app.tenants.reload();
    await expect(failed).rejects.toBeInstanceOf(ConfigError);
    await expect(next).rejects.toBeInstanceOf(ConfigError);
    await writeFile(file, documentOf(['globex']));
    await app.tenants.reload();
    expect(app.tenants.list().map((t) => t.name)).toEqual(['globex']);
  });
});
