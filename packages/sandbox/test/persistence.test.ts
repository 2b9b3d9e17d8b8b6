import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataFileLockedError, type Sandbox, startSandbox } from '../src/index.js';
import { basic } from './helpers.js';

describe('persistence with a dataFile', () => {
  let dir = '';
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps certificates, credentials, groups, bills, records and id maps across a restart', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sandbox-data-'));
    const dataFile = join(dir, 'sandbox.sqlite');
    const first = await startSandbox({ port: 0, appUrl: 'http://localhost:3000', dataFile, seed: 500, marketplaces: ['alpha', 'beta'] });
    const m = first.credentials.marketplaces[0];
    if (!m) throw new Error('marketplace');
    const auth = basic(m.apiId, m.apiKey);
    const created = await fetch(`${first.url}/api/v2/cld-sbx1/people`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json', 'connec-external-ids': 'true' },
      body: JSON.stringify({ people: { id: [{ id: 'P-77', provider: 'myapp', realm: 'r1' }], first_name: 'Persisted' } }),
    });
    expect(created.status).toBe(201);
    const person = ((await created.json()) as { people: { id: Array<{ id: string; provider: string }> } }).people;
    const personId = person.id.find((i) => i.provider === 'connec')?.id;
    const bill = await fetch(`${first.url}/api/v1/account/bills`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ group_id: 'cld-sbx1', price_cents: 100, description: 'kept' }) });
    const billId = ((await bill.json()) as { data: { id: string } }).data.id;
    const stateBefore = await first.admin.state();
    await first.stop();

    const second = await startSandbox({ port: 0, appUrl: 'http://localhost:3000', dataFile, seed: 500 });
    try {
      expect(second.seeded).toBeNull();
      expect(second.credentials.environment).toEqual(first.credentials.environment);
      expect(second.credentials.marketplaces).toEqual(first.credentials.marketplaces);
      const stateAfter = await second.admin.state();
      expect(stateAfter.counts).toEqual({ ...stateBefore.counts, deliveries: 0 });
      const again = await fetch(`${second.url}/api/v2/cld-sbx1/people/${personId}`, { headers: { authorization: auth, 'connec-external-ids': 'true' } });
      expect(again.status).toBe(200);
      const p = ((await again.json()) as { people: { first_name: string; id: unknown } }).people;
      expect(p.first_name).toBe('Persisted');
      expect(p.id).toContainEqual({ id: 'P-77', provider: 'myapp', realm: 'r1' });
      const dup = await fetch(`${second.url}/api/v2/cld-sbx1/people`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({ people: { id: [{ id: 'P-77', provider: 'myapp', realm: 'r1' }] } }),
      });
      expect(dup.status).toBe(409);
      const b = await fetch(`${second.url}/api/v1/account/bills/${billId}`, { headers: { authorization: auth } });
      expect(((await b.json()) as { data: { description: string } }).data.description).toBe('kept');
      const mkt = await second.admin.marketplaces();
      expect(mkt.map((x) => (x.sso as { x509_fingerprint: string }).x509_fingerprint)).toEqual(first.credentials.marketplaces.map((x) => x.fingerprint));
    } finally {
      await second.stop();
    }
  });

  it('refuses a second sandbox on a data file in use (DataFileLockedError); the first keeps running and its state', async () => {
    const lockDir = await mkdtemp(join(tmpdir(), 'sandbox-lock-'));
    const dataFile = join(lockDir, 'sandbox.sqlite');
    const first = await startSandbox({ port: 0, appUrl: 'http://localhost:3000', dataFile, seed: 20 });
    try {
      const refused = await startSandbox({ port: 0, appUrl: 'http://localhost:3000', dataFile, seed: 20 }).catch((e: unknown) => e);
      if (!(refused instanceof Error)) await (refused as Sandbox).stop();
      expect(refused).toBeInstanceOf(DataFileLockedError);
      expect(refused).toMatchObject({ name: 'DataFileLockedError', code: 'DATA_FILE_LOCKED', dataFile });
      expect((refused as Error).message).toContain(`The data file ${dataFile} is in use by another running sandbox`);
      // The refused start let go of nothing the first one holds: a third start is refused too.
      await expect(startSandbox({ port: 0, appUrl: 'http://localhost:3000', dataFile })).rejects.toBeInstanceOf(DataFileLockedError);
      const m = first.credentials.marketplaces[0];
      if (!m) throw new Error('marketplace');
      const created = await fetch(`${first.url}/api/v2/cld-sbx1/people`, {
        method: 'POST',
        headers: { authorization: basic(m.apiId, m.apiKey), 'content-type': 'application/json' },
        body: JSON.stringify({ people: { first_name: 'Still mine' } }),
      });
      expect(created.status).toBe(201);
    } finally {
      await first.stop();
    }
    const again = await startSandbox({ port: 0, appUrl: 'http://localhost:3000', dataFile });
    try {
      const m = again.credentials.marketplaces[0];
      if (!m) throw new Error('marketplace');
      const people = await fetch(`${again.url}/api/v2/cld-sbx1/people?$filter=${encodeURIComponent("first_name eq 'Still mine'")}`, { headers: { authorization: basic(m.apiId, m.apiKey) } });
      expect(((await people.json()) as { pagination: { total: number } }).pagination.total).toBe(1);
    } finally {
      await again.stop();
      await rm(lockDir, { recursive: true, force: true });
    }
  });
});
