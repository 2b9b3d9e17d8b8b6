/**
 * A worker process killed with SIGKILL right after the id-map write of a new invoice, before
 * the link-back of our ids (record and lines) reached Connec!: the restarted worker links the
 * invoice's line ids (stored with the id map), so the next Connec! edit updates the app's lines
 * instead of creating them again. The e2e sync app in separate processes, PostgreSQL storage and
 * app tables, the sandbox's Connec!.
 */
import { JobTypes, type JsonObject } from '@org/maestrano-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SyncHarness, startSyncHarness, stopChild, waitFor } from '../e2e/sync/harness.js';
import { pgUnavailableReason } from './lib/pg.js';
import { report } from './lib/report.js';

const unavailable = await pgUnavailableReason();
// CI must run these tests: there a missing PostgreSQL fails the file instead of skipping it.
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);
if (unavailable) console.warn(`[reliability/worker-kill-line-ids] skipped: ${unavailable}`);

type IdEntry = { id?: unknown; provider?: unknown };
type Line = { id?: IdEntry[]; description?: string; quantity?: number };

let h: SyncHarness;

describe.skipIf(unavailable !== null)('worker SIGKILL between the id-map write and the link-back of an invoice', () => {
  beforeAll(async () => {
    h = await startSyncHarness({ storage: 'postgres', invoices: true });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("the restarted worker links the invoice's line ids, and Connec!'s next edit creates no line again", { timeout: 180_000 }, async () => {
    const { groupId } = await h.provisionGroup('Line Ids Co');
    await h.drain();
    const inbox = async () => h.storage.jobs.counts({ type: JobTypes.connecRecord });
    const inboxIdle = async () => {
      const c = await inbox();
      return c.pending === 0 && c.running === 0;
    };
    const created = await h.sandbox.admin.createRecord(groupId, 'invoices', {
      transaction_number: 'INV-KILL',
      type: 'CUSTOMER',
      lines: [
        { description: 'Widget', quantity: 1 },
        { description: 'Gadget', quantity: 2 },
      ],
    });
    const connecId = String(created.id);
    await h.sandbox.admin.waitForDeliveries(60_000);
    expect((await inbox()).pending).toBeGreaterThanOrEqual(1);

    // The victim creates the invoice and its lines, writes the id map (with the line ids the
    // link-back owes) and hangs there; it is killed before the link-back leaves.
    const victim = await h.spawnWorker({ invoices: true, stallAfterInvoiceMap: true, concurrency: 1 });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the victim never wrote the invoice map')), 60_000);
      victim.stdout?.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('stalled after the invoice map write')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    victim.kill('SIGKILL');
    await new Promise<void>((resolve) => (victim.exitCode !== null || victim.signalCode !== null ? resolve() : victim.once('exit', () => resolve())));
    expect(victim.signalCode).toBe('SIGKILL');

    const [invoiceId] = await h.db.invoiceIds();
    expect(invoiceId).toBeDefined();
    const lineIds = (await h.db.invoiceLines(invoiceId ?? '')).map((l) => l.id);
    expect(lineIds).toHaveLength(2);
    const ours = (entries: IdEntry[] | undefined) => (entries ?? []).find((e) => e.provider !== 'connec')?.id ?? null;
    const remoteLines = async () => ((await h.sandbox.admin.getRecord(groupId, 'invoices', connecId, { externalIds: true })).lines ?? []) as Line[];
    // Killed before the link-back: Connec! names the lines by its own ids only.
    expect((await remoteLines()).map((l) => ours(l.id))).toEqual([null, null]);

    // A restarted worker takes the job over once the victim's lease lapses.
    const survivor = await h.spawnWorker({ invoices: true, concurrency: 2 });
    await waitFor('the link-back of the line ids', async () => (await remoteLines()).every((l) => ours(l.id) !== null), 60_000);
    await waitFor('the inbox to drain after the restart', inboxIdle, 60_000);
    expect((await remoteLines()).map((l) => ours(l.id))).toEqual(lineIds);

    // Another app edits the first line in Connec!: the survivor updates the app's two lines.
    const plain = await h.sandbox.admin.getRecord(groupId, 'invoices', connecId);
    const edited = ((plain.lines ?? []) as JsonObject[]).map((l, k) => (k === 0 ? { ...l, quantity: 5 } : l));
    await h.sandbox.admin.updateRecord(groupId, 'invoices', connecId, { lines: edited });
    await h.sandbox.admin.waitForDeliveries(60_000);
    await waitFor('the edit to reach the app', async () => (await h.db.invoiceLines(invoiceId ?? ''))[0]?.quantity === 5, 60_000);
    await waitFor('the inbox to drain after the edit', inboxIdle, 60_000);
    await stopChild(survivor);

    const lines = await h.db.invoiceLines(invoiceId ?? '');
    const lineCreates = (await h.db.pool.query<{ n: string }>("SELECT count(*)::text AS n FROM app_writes WHERE entity = 'invoice_lines' AND kind = 'create'")).rows[0]?.n;
    report({
      area: 'faults',
      name: 'worker SIGKILL before an invoice link-back',
      faultsInjected: 1,
      faultsSurvived: lines.length === 2 && Number(lineCreates) === 2 ? 1 : 0,
      recordsExpected: 2,
      recordsLost: Math.max(0, 2 - lines.length),
      duplicates: Math.max(0, Number(lineCreates) - 2),
    });
    expect(lines.map((l) => ({ id: l.id, quantity: l.quantity }))).toEqual([
      { id: lineIds[0], quantity: 5 },
      { id: lineIds[1], quantity: 2 },
    ]);
    expect(Number(lineCreates)).toBe(2);
    expect(await h.db.invoiceIds()).toEqual([invoiceId]);
    expect((await inbox()).dead).toBe(0);
  });
});
