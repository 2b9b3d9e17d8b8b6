// Job dedupe keys join the tenant, the group id and a suffix with ':'. Group ids may contain
// ':' (the router, the notification route and the control endpoints accept them): unescaped,
// the group `X:outbound` shared its import's dedupe key with the catch-up of group `X`
// (`sync.import:<tenant>:X:outbound`), so once X's sync was switched off and on, the first
// import of `X:outbound` was deduplicated away and its company never imported.
import { JobTypes } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { keyPart } from '../../src/internal/keys.js';
import { imported, setup } from './catch-up-harness.js';
import { GROUP, ORG_UID, TENANT } from './harness.js';

describe('a group id containing ":" and another group\'s job keys', () => {
  it('the first import of group "<X>:outbound" is not swallowed by the catch-up of group X', async () => {
    const s = setup();
    await imported(s);
    // The platform switches X's sync off and on: a catch-up of X is stored (and runs).
    expect((await s.toggle()).json).toMatchObject({ sync_enabled: false });
    expect((await s.toggle()).json).toMatchObject({ sync_enabled: true });
    await s.drain();

    // A second company of the same marketplace, whose Maestrano group id is `X:outbound`.
    const other = `${GROUP}:outbound`;
    const claim = await s.storage.groups.claim(TENANT, other, { owner: 'test', ttlMs: 60_000 });
    expect(claim.state).toBe('claimed');
    await s.storage.groups.complete(TENANT, other, 'test', { companyId: 'co-other', orgUid: ORG_UID, settings: {} });
    s.connec.seed(other, 'organizations', { name: 'Initech' }, 'o9');

    // What its first login enqueues: the initial import of that group.
    const result = await s.mno.sync.enqueueImport({ tenant: TENANT, groupId: other });
    const job = await s.storage.jobs.get(result.jobId);
    expect(job?.groupId).toBe(other);
    expect(result.created).toBe(true);
    await s.drain();
    expect([...s.rows.values()].map((r) => r.name)).toContain('Initech');
  });

  it('the company.created fan-out of group "<X>:outbound" enqueues its import', async () => {
    const s = setup();
    await imported(s);
    expect((await s.toggle()).json).toMatchObject({ sync_enabled: false });
    expect((await s.toggle()).json).toMatchObject({ sync_enabled: true });
    await s.drain();

    const other = `${GROUP}:outbound`;
    await s.storage.groups.claim(TENANT, other, { owner: 'test', ttlMs: 60_000 });
    await s.storage.groups.complete(TENANT, other, 'test', { companyId: 'co-other', orgUid: ORG_UID, settings: {} });
    s.connec.seed(other, 'organizations', { name: 'Initech' }, 'o9');
    // What SSO provisioning stores for the new company.
    await s.storage.jobs.enqueue({
      type: JobTypes.companyCreated,
      tenant: TENANT,
      groupId: other,
      dedupeKey: `company.created:${TENANT}:${other}`,
      payload: { tenant: TENANT, groupId: other, companyId: 'co-other', group: {} },
    });
    await s.drain();
    const imports = (await s.storage.jobs.counts({ type: JobTypes.syncImport }));
    expect(imports.dead).toBe(0);
    // The new company's records were imported.
    expect([...s.rows.values()].map((r) => r.name)).toContain('Initech');
  });

  it('keyPart keeps ids without ":" or "%" as they are and makes every other part list distinct', () => {
    expect(keyPart('cld-9a1b')).toBe('cld-9a1b');
    expect(keyPart('usr-1.2_3')).toBe('usr-1.2_3');
    const join = (...parts: string[]) => parts.map(keyPart).join(':');
    expect(join('a:b', 'c')).not.toBe(join('a', 'b:c'));
    expect(join('a%3Ab', 'c')).not.toBe(join('a:b', 'c'));
    expect(join('cld-1:outbound')).not.toBe(`${join('cld-1')}:outbound`);
  });
});
