/**
 * The app of the catch-up tests (toggle_sync switching the sync back on, mno.sync.pushChanged):
 * companies <-> organizations with list, get and localUpdatedAt (newest-wins), the whole
 * Maestrano handler on a FakeConnec, and the control routes as calls.
 */
import {
  createMaestrano,
  defineConnector,
  defineEntity,
  type Maestrano,
  memoryAdapter,
  type StorageAdapter,
  staticTenants,
} from '@org/maestrano-sdk';
import { expect } from 'vitest';
import { FakeConnec } from './fake-connec.js';
import { API_ID, API_KEY, drainer, GROUP, ORG_UID, silentLogger, TENANT, testTenant } from './harness.js';

export interface Co {
  id: string;
  name: string;
  updatedAt: Date;
}
type CoData = { id?: string; name: string; updatedAt?: Date };

/** An app with companies <-> organizations: list, get, localUpdatedAt, default conflict policy (newest-wins). */
export function setup(opts: { batchSize?: number; between?: (i: number) => Promise<void>; failUpdateName?: string; clock?: () => Date; noList?: boolean; storage?: StorageAdapter; connec?: FakeConnec } = {}) {
  const rows = new Map<string, Co>();
  let seq = 0;
  const keys = new Map<string, string>();
  const companies = defineEntity({
    name: 'companies',
    connec: 'organizations',
    direction: 'both',
    matchingFields: ['name'],
    toLocal: (org: Record<string, unknown>): CoData => ({ name: String(org.name ?? ''), updatedAt: new Date() }),
    toConnec: (c: CoData) => ({ name: c.name }),
    localId: (c: CoData) => c.id ?? '',
    localUpdatedAt: (c: CoData) => c.updatedAt ?? null,
    local: {
      create: async (data, ctx) => {
        const known = keys.get(ctx.idempotencyKey);
        if (known) return { id: known };
        const id = `co-${++seq}`;
        rows.set(id, { id, name: data.name, updatedAt: new Date() });
        keys.set(ctx.idempotencyKey, id);
        return { id };
      },
      update: async (id, data) => {
        const row = rows.get(id);
        if (!row) return { gone: true };
        if (opts.failUpdateName !== undefined && data.name === opts.failUpdateName) throw new Error('app refused the write');
        rows.set(id, { ...row, name: data.name, updatedAt: new Date() });
        return undefined;
      },
      get: async (id) => {
        const row = rows.get(id);
        return row ? { ...row } : null;
      },
      ...(opts.noList ? {} : { async *list() {
        // One page read at once (like the CRM's 200-row pages), handed out record by record.
        const snapshot = [...rows.values()].map((r) => ({ ...r }));
        for (const [i, r] of snapshot.entries()) {
          if (i > 0 && opts.between) await opts.between(i);
          yield r;
        }
      } }),
    },
  });
  const storage: StorageAdapter = opts.storage ?? memoryAdapter(opts.clock ? { clock: opts.clock } : {});
  const connec = opts.connec ?? new FakeConnec(ORG_UID);
  const mno: Maestrano = createMaestrano({
    tenants: staticTenants([testTenant()]),
    storage,
    provisioning: { createCompany: () => ({ id: 'company' }), createUser: () => ({ id: 'user' }) },
    onLogin: () => new Response('ok'),
    logger: silentLogger,
    ...(opts.clock ? { clock: opts.clock } : {}),
    connector: defineConnector({ entities: [companies] }),
    sync: { connecPort: () => connec, parkRetryMs: 5, maxAttempts: 4, ...(opts.batchSize ? { batchSize: opts.batchSize } : {}) },
  });
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await mno.handler(
      new Request(`http://127.0.0.1/maestrano/${TENANT}/synchronizations${path}`, {
        method,
        headers: { authorization: `Basic ${Buffer.from(`${API_ID}:${API_KEY}`).toString('base64')}`, 'content-type': 'application/json' },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      }),
    );
    const text = await res.text();
    return { status: res.status, json: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  };
  return {
    rows,
    storage,
    connec,
    mno,
    drain: drainer(mno.worker, storage),
    start: () => call('POST', '', { group_id: GROUP }),
    toggle: () => call('PUT', '/toggle_sync', { group_id: GROUP }),
    status: () => call('GET', `/${GROUP}`),
  };
}

export type Setup = ReturnType<typeof setup>;

export async function provision(storage: StorageAdapter) {
  const claim = await storage.groups.claim(TENANT, GROUP, { owner: 'test', ttlMs: 60_000 });
  if (claim.state !== 'claimed') throw new Error('group already provisioned');
  await storage.groups.complete(TENANT, GROUP, 'test', { companyId: 'co', orgUid: ORG_UID, settings: {} });
}

export async function imported(s: Setup) {
  await provision(s.storage);
  s.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o1');
  s.connec.seed(GROUP, 'organizations', { name: 'Globex' }, 'o2');
  await s.start();
  await s.drain();
  expect([...s.rows.values()].map((r) => r.name).sort()).toEqual(['Acme', 'Globex']);
}

export const byName = (s: Setup, name: string) => {
  const row = [...s.rows.values()].find((r) => r.name === name);
  if (!row) throw new Error(`no ${name}`);
  return row;
};
