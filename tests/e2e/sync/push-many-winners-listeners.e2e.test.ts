/**
 * `sync.importConcurrency` above 10 (it goes up to 64): a page or batch of records whose local
 * version wins a conflict pushes each winner back, `importConcurrency` at once, each push with
 * the job's `ctx.signal`. The Connec! client linked each call to that one signal with its own
 * 'abort' listener: past ten pushes in flight Node printed "Possible EventTarget memory leak
 * detected" (MaxListenersExceededWarning) for a process that leaks nothing, as the worker did
 * past ten slots. Against the sandbox as Connec!.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type PushHarness, startPushHarness, TENANT } from './push-harness.js';

let h: PushHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const RECORDS = 12;

describe('conflict winners pushed back with importConcurrency above 10', () => {
  it('pushes them all at once without a MaxListenersExceededWarning', async () => {
    // Holds the winners' batch calls until all of them are in flight together.
    let holding = false;
    const waiting: (() => void)[] = [];
    const holdingFetch: typeof fetch = async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (holding && url.includes('/batch')) {
        await new Promise<void>((resolve) => {
          waiting.push(resolve);
          if (waiting.length === RECORDS) for (const release of waiting.splice(0)) release();
        });
      }
      return fetch(input, init);
    };
    h = await startPushHarness({ conflict: 'local-wins', sync: { importConcurrency: 16 }, fetch: holdingFetch });
    const { mno, sandbox, groupId, contacts } = h;
    const connecIds: string[] = [];
    for (let i = 1; i <= RECORDS; i++) {
      const id = `ct-${i}`;
      contacts.set(id, { id, firstName: `First${i}`, lastName: 'Doe', jobTitle: 'Engineer', email: null, updatedAt: new Date() });
      const pushed = await mno.sync.push({ tenant: TENANT, groupId, entity: 'contacts', record: contacts.get(id) });
      expect(pushed.status).toBe('pushed');
      connecIds.push(String(pushed.connecId));
    }
    await sandbox.admin.waitForDeliveries();
    // Both sides edit every record: the app's edits win.
    for (const [k, connecId] of connecIds.entries()) {
      const id = `ct-${k + 1}`;
      const row = contacts.get(id);
      if (!row) throw new Error(`no ${id}`);
      contacts.set(id, { ...row, jobTitle: 'CTO', updatedAt: new Date(Date.now() + 60_000) });
      await sandbox.admin.updateRecord(groupId, 'people', connecId, { last_name: 'Smith' });
    }

    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    holding = true;
    try {
      await h.deliver();
      // Node reports the warning on the next tick of the listener that crossed the limit.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    for (const connecId of connecIds) {
      const inConnec = await sandbox.admin.getRecord(groupId, 'people', connecId, { externalIds: false });
      expect(inConnec).toMatchObject({ last_name: 'Doe', job_title: 'CTO' });
    }
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message)).toEqual([]);
  });
});
