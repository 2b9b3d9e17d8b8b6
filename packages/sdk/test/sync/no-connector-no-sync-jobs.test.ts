// An app without a connector has nothing to import, apply or poll: a new company gets its
// billing set-up and no `sync.import` job (it ran one per company that read nothing and logged
// "import started" / "import completed, fetched 0"), and the worker runs no sync job type.
import { createMaestrano, JobTypes, memoryAdapter, type StorageAdapter } from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';
import { API_ID, API_KEY, buildConnector, LocalApp } from './harness.js';

const { certificate } = createTestCertificate({ bits: 1024 });

function build(connector: boolean) {
  const storage = memoryAdapter();
  const infos: string[] = [];
  const mno = createMaestrano({
    tenants: [{ marketplace: 'acme', app: { host: 'https://app.example.com' }, api: { id: API_ID, key: API_KEY, host: 'https://hub.example.com' }, sso: { x509_certificate: certificate } }],
    storage,
    provisioning: { createCompany: async () => ({ id: 'c' }), createUser: async () => ({ id: 'u' }) },
    onLogin: async () => new Response('ok'),
    billing: { onCompanyCreated: () => null },
    logger: { debug() {}, info: (m) => infos.push(m), warn() {}, error() {} },
    ...(connector ? { connector: buildConnector(new LocalApp()) } : {}),
  });
  return { mno, storage, infos };
}

const all = async (storage: StorageAdapter, type: string) => {
  const { pending, running, done, dead } = await storage.jobs.counts({ type });
  return { pending, running, done, dead };
};
const total = async (storage: StorageAdapter, type: string) => Object.values(await all(storage, type)).reduce((a, b) => a + b, 0);

describe('an app without a connector', () => {
  it('queues no sync.import for a new company and runs no sync job type', async () => {
    const { mno, storage, infos } = build(false);
    expect(mno.worker.types).toEqual([JobTypes.billingCheckDuplicates, JobTypes.billingSubscribe, JobTypes.companyCreated].sort());
    await storage.jobs.enqueue({ type: JobTypes.companyCreated, tenant: 'acme', groupId: 'cld-1', payload: { tenant: 'acme', groupId: 'cld-1', companyId: 'c', group: {} } });
    await mno.worker.drain({ pollIntervalMs: 1, types: [JobTypes.companyCreated] });
    // The fan-out ran: billing's job exists (it waits for the group's provisioning), no import's.
    expect(await all(storage, JobTypes.companyCreated)).toEqual({ pending: 0, running: 0, done: 1, dead: 0 });
    expect(await total(storage, JobTypes.billingSubscribe)).toBe(1);
    expect(await total(storage, JobTypes.syncImport)).toBe(0);
    expect(infos.filter((m) => m.startsWith('sync:'))).toEqual([]);
  });

  it('with a connector, the same company gets its import job (the control case)', async () => {
    const { mno, storage } = build(true);
    expect(mno.worker.types).toEqual(expect.arrayContaining([JobTypes.syncImport, JobTypes.syncPoll, JobTypes.connecRecord, JobTypes.syncPurge]));
    await storage.jobs.enqueue({ type: JobTypes.companyCreated, tenant: 'acme', groupId: 'cld-1', payload: { tenant: 'acme', groupId: 'cld-1', companyId: 'c', group: {} } });
    await mno.worker.drain({ pollIntervalMs: 1, types: [JobTypes.companyCreated] });
    expect(await all(storage, JobTypes.companyCreated)).toEqual({ pending: 0, running: 0, done: 1, dead: 0 });
    expect(await total(storage, JobTypes.billingSubscribe)).toBe(1);
    expect(await total(storage, JobTypes.syncImport)).toBe(1);
  });
});
