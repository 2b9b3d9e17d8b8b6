/**
 * What an integrator reads of the sync (events, counters, progress callbacks) matches what
 * happened, and observability never breaks syncing.
 */
import type { SyncEvent } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { C, createHarness, GROUP, provisionGroup, TENANT } from './harness.js';

describe('record.skipped reasons (packages/sdk/docs/connectors.md §7: reason `unknown_group`)', () => {
  it('a notification for a cancelled group is reported as record.skipped { reason: unknown_group }', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    await h.storage.groups.cancel(TENANT, GROUP);
    const events: SyncEvent[] = [];
    h.sync.api.on((e) => events.push(e));
    const person = h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1');
    expect((await h.notify({ people: [person] })).status).toBe(200);
    await h.drain(20);

    expect(h.app.contacts.size).toBe(0);
    expect(h.sync.api.counters().skippedOther).toBe(1);
    // The record was skipped: the event the docs list for it must be emitted.
    expect(events).toContainEqual({ type: 'record.skipped', tenant: TENANT, groupId: GROUP, entity: 'contacts', connecId: 'p1', reason: 'unknown_group' });
  });
});

describe('records parked by an import (docs: `record.parked` event, counter `parked`)', () => {
  it('emit record.parked and count in `parked` like a parked notification', async () => {
    const h = await createHarness({ sync: { fetchMissingReferences: false } });
    await provisionGroup(h.storage);
    const events: SyncEvent[] = [];
    h.sync.api.on((e) => events.push(e));
    // The person's organization is not (yet) in Connec!: the person is parked on it.
    h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe', organization_id: [C('o-later')] }, 'p1');
    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect(report.entities.contacts).toMatchObject({ fetched: 1, created: 0, deferred: 1 });

    // The organization arrives (a notification) before the inbox job runs: the person applies
    // and nothing ever says it had been parked.
    const org = h.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o-later');
    expect((await h.notify({ organizations: [org] })).status).toBe(200);
    await h.drain(50);
    expect(h.app.contacts.size).toBe(1);

    expect(events.filter((e) => e.type === 'record.parked')).toEqual([
      { type: 'record.parked', tenant: TENANT, groupId: GROUP, entity: 'contacts', connecId: 'p1', waitingFor: 'companies:o-later' },
    ]);
    expect(h.sync.api.counters().parked).toBe(1);
  });
});

describe('the importGroup progress callback is observability too', () => {
  it('a throwing onProgress does not stop the import (a throwing event listener does not)', async () => {
    const h = await createHarness({ sync: { pageSize: 2 } });
    await provisionGroup(h.storage);
    for (let i = 0; i < 4; i++) h.connec.seed(GROUP, 'items', { name: `Item ${i}` }, `it${i}`);
    h.sync.api.on(() => {
      throw new Error('listener bug');
    });
    const seen: number[] = [];
    const result = await h.sync.api
      .importGroup({
        tenant: TENANT,
        groupId: GROUP,
        onProgress: (p) => {
          seen.push(p.done);
          // e.g. a progress bar whose websocket closed
          throw new Error('progress bar gone');
        },
      })
      .then(
        (report) => ({ ok: true as const, report }),
        (error: unknown) => ({ ok: false as const, error: error instanceof Error ? error.message : String(error) }),
      );
    expect({ outcome: result.ok ? result.report.status : result.error, items: h.app.items.size }).toEqual({ outcome: 'complete', items: 4 });
  });
});

describe('a poll counts each changed record once', () => {
  it('records a poll created and linked back on an earlier page are not read again nor reported skipped', async () => {
    const h = await createHarness({ sync: { pageSize: 2 } });
    await provisionGroup(h.storage);
    await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    const events: SyncEvent[] = [];
    h.sync.api.on((e) => events.push(e));
    // Four items created in Connec! after the import (by another app).
    h.connec.setClock(new Date(Date.now() + 60_000).toISOString());
    for (let i = 0; i < 4; i++) h.connec.seed(GROUP, 'items', { name: `Item ${i}` }, `it${i}`);

    const report = await h.sync.api.pollGroup({ tenant: TENANT, groupId: GROUP });

    expect(h.app.items.size).toBe(4);
    expect(h.app.writes).toEqual({ create: 4, update: 0 });
    // Four records changed in Connec!: four created, nothing skipped.
    expect(report.entities.items).toMatchObject({ fetched: 4, created: 4, updated: 0, skipped: 0, linked: 4 });
    expect(events.filter((e) => e.type === 'record.skipped')).toEqual([]);
    expect(h.sync.api.counters()).toMatchObject({ created: 4, skippedReplay: 0 });
  });
});

describe('the SyncReport counts every record handed to the inbox (docs §7: `deferred`)', () => {
  it('records deferred on pages applied at the same time are all counted in `deferred`', async () => {
    // Two pages in flight (the default): page 1 holds a record whose mapper fails, page 2 one
    // parked on an organization Connec! does not have yet. Both go to the inbox.
    const h = await createHarness({ sync: { fetchMissingReferences: false, pageSize: 2, importPagesInFlight: 2 } });
    await provisionGroup(h.storage);
    h.app.poisonLastName = 'Bad';
    h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1');
    h.connec.seed(GROUP, 'people', { first_name: 'Bob', last_name: 'Bad' }, 'p2');
    h.connec.seed(GROUP, 'people', { first_name: 'Al', last_name: 'Park', organization_id: [C('o-later')] }, 'p3');
    h.connec.seed(GROUP, 'people', { first_name: 'Ann', last_name: 'Ok' }, 'p4');
    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });

    const inbox = (await h.storage.jobs.counts()).pending;
    expect(inbox).toBe(2);
    expect(report.entities.contacts).toMatchObject({ fetched: 4, created: 2, failed: 1, deferred: inbox });
  });
});
