// An external id re-bound from a reserved placeholder uuid to an existing record (PUT with
// the id array) resolves to that record before and after a restart of a sandbox with a data
// file: the placeholder's stored id list loses the id too.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { startSandbox } from '../src/index.js';
import { basic } from './helpers.js';

let dir = '';
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('resolves an external id to the same record before and after a restart', async () => {
  dir = await mkdtemp(join(tmpdir(), 'sandbox-idmap-'));
  const dataFile = join(dir, 'sandbox.sqlite');
  const ext = (id: string) => [{ id, provider: 'myapp', realm: 'r1' }];
  const first = await startSandbox({ port: 0, appUrl: 'http://localhost:3000', dataFile, seed: 0 });
  const g = await first.admin.createGroup({ id: 'cld-rev1' });
  const m = first.credentials.marketplaces[0];
  if (!m) throw new Error('marketplace');
  const auth = basic(m.apiId, m.apiKey);
  const call = async (base: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}/api/v2/${g.id}/${path}`, { method, headers: { authorization: auth, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
    expect(res.status, `${method} ${path}: ${await res.clone().text()}`).toBeLessThan(300);
    return (await res.json()) as Record<string, Record<string, unknown>>;
  };
  // 1. the person, under the app's first id
  const person = (await call(first.url, 'POST', 'people', { people: { id: ext('p-1'), last_name: 'Target' } })).people as { id: string };
  // 2. an invoice referencing app id 42 before any record has it: a uuid is reserved
  const inv1 = (await call(first.url, 'POST', 'invoices', { invoices: { title: 'A', person_id: ext('42') } })).invoices as { person_id: string };
  expect(inv1.person_id).not.toBe(person.id);
  // 3. the app re-keys the person to 42 (allowed: 42 is only a placeholder)
  await call(first.url, 'PUT', `people/${person.id}`, { people: { id: ext('42') } });
  const before = (await call(first.url, 'POST', 'invoices', { invoices: { title: 'B', person_id: ext('42') } })).invoices as { person_id: string };
  expect(before.person_id).toBe(person.id);
  await first.stop();

  const second = await startSandbox({ port: 0, appUrl: 'http://localhost:3000', dataFile });
  try {
    const after = (await call(second.url, 'POST', 'invoices', { invoices: { title: 'C', person_id: ext('42') } })).invoices as { person_id: string };
    expect(after.person_id).toBe(person.id);
  } finally {
    await second.stop();
  }
});
