/**
 * The account half killed with SIGKILL at precise points (PostgreSQL, Prisma adapter): the
 * app runs in a child process (`lib/account-child.ts`) that hangs at the crash point and is
 * killed there, then a restarted child (same database) carries on. Nothing accepted may be
 * lost: no second recurring bill or ad-hoc bill, no second company, and a group deletion
 * acknowledged to Maestrano must reach the app's company.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type Sandbox, startSandbox } from '@org/maestrano-sandbox';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Served, serve } from './lib/http.js';
import { createDatabase, pgUnavailableReason, type PrismaStorage, prismaStorage, type TestDatabase } from './lib/pg.js';
import { waitFor } from './lib/platform.js';

const unavailable = await pgUnavailableReason();
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);
if (unavailable) console.warn(`[reliability/account-crash] skipped: ${unavailable}`);

const TENANT = 'rel-crash';
let db: TestDatabase;
let storage: PrismaStorage;
let served: Served;
let sandbox: Sandbox;
let childUrl: string | null = null;
const children = new Set<ChildProcess>();

interface Child {
  proc: ChildProcess;
  url: string;
  crashed: Promise<string>;
}

async function spawnChild(env: Record<string, string> = {}): Promise<Child> {
  const entry = fileURLToPath(new URL('./lib/account-child.ts', import.meta.url));
  const proc = spawn(process.execPath, ['--conditions=@org/source', '--import', 'tsx', entry], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    env: {
      ...process.env,
      CRASH_DATABASE_URL: db.url,
      CRASH_DEVPL_HOST: sandbox.url,
      CRASH_DEVPL_KEY: sandbox.credentials.environment.apiKey,
      CRASH_DEVPL_SECRET: sandbox.credentials.environment.apiSecret,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  let stderr = '';
  proc.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
    if (process.env.CRASH_DEBUG) process.stderr.write(c);
  });
  let out = '';
  let onCrash: (what: string) => void = () => {};
  const crashed = new Promise<string>((resolve) => (onCrash = resolve));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child did not start: ${stderr}`)), 60_000);
    proc.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const ready = /ready (\S+)/.exec(out);
      if (ready) {
        clearTimeout(timer);
        resolve(ready[1]!);
      }
      const crash = /CRASHPOINT ([^\n]+)/.exec(out);
      if (crash) onCrash(crash[1]!);
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited with ${code}: ${stderr}`));
    });
  });
  childUrl = url;
  return { proc, url, crashed };
}

async function kill(child: Child): Promise<void> {
  child.proc.kill('SIGKILL');
  await new Promise<void>((resolve) => (child.proc.exitCode !== null || child.proc.signalCode !== null ? resolve() : child.proc.once('exit', () => resolve())));
  expect(child.proc.signalCode).toBe('SIGKILL');
  childUrl = null;
}

async function stop(child: Child): Promise<void> {
  child.proc.kill('SIGTERM');
  const exited = new Promise<void>((resolve) => (child.proc.exitCode !== null || child.proc.signalCode !== null ? resolve() : child.proc.once('exit', () => resolve())));
  await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
  child.proc.kill('SIGKILL');
  childUrl = null;
}

/** IdP-initiated login of `userId` into `groupId`, posted to the ACS (through the parent's forwarder). */
async function login(userId: string, groupId: string): Promise<{ status: number; body: string }> {
  const sso = await sandbox.admin.ssoIdpInitiated({ userId, groupId });
  try {
    const res = await fetch(sso.acsUrl, { method: 'POST', body: new URLSearchParams({ SAMLResponse: sso.samlResponse }), redirect: 'manual' });
    return { status: res.status, body: await res.text() };
  } catch (error) {
    return { status: 0, body: String(error) };
  }
}

const ledger = async (key: string) => (await db.sql<{ status: string; outcome: unknown }>('SELECT status, outcome FROM maestrano_ledger WHERE key = $1', [key]))[0];
const duplicateChecks = (groupId: string) =>
  db.sql<{ status: string }>("SELECT status FROM maestrano_jobs WHERE type = 'billing.check_duplicates' AND group_id = $1", [groupId]);
const liveRecurring = async (groupId: string) => (await sandbox.admin.listRecurringBills(groupId)).filter((b) => b.status !== 'cancelled');

async function newGroup(name: string) {
  const group = await sandbox.admin.createGroup({ marketplace: TENANT, name, currency: 'USD' });
  const user = await sandbox.admin.createUser({ memberships: [{ groupId: group.id, role: 'Admin' }] });
  return { groupId: group.id, userId: user.id };
}

describe.skipIf(unavailable !== null)('account half: SIGKILL at precise points, then a restart', () => {
  beforeAll(async () => {
    db = await createDatabase('crash');
    storage = await prismaStorage(db.url);
    await db.sql('CREATE TABLE app_companies (id text PRIMARY KEY, group_id text UNIQUE NOT NULL, status text NOT NULL)');
    // The app URL Maestrano knows: forwards to whichever child process is alive (503 when none).
    served = await serve(async (request) => {
      if (!childUrl) return new Response(null, { status: 503 });
      const url = new URL(request.url);
      const body = request.method === 'GET' || request.method === 'HEAD' ? undefined : await request.arrayBuffer();
      const headers = new Headers(request.headers);
      headers.delete('host');
      try {
        return await fetch(`${childUrl}${url.pathname}${url.search}`, { method: request.method, headers, body, redirect: 'manual' });
      } catch {
        return new Response(null, { status: 502 });
      }
    });
    sandbox = await startSandbox({ port: 0, appUrl: served.url, marketplaces: [TENANT], retryBaseMs: 200, maxDeliveryAttempts: 10 });
  });
  afterEach(() => {
    for (const c of children) c.kill('SIGKILL');
    childUrl = null;
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await sandbox?.stop();
    await served?.close();
    await storage?.close();
    await db?.drop();
  });

  it('killed right after the recurring bill POST was answered: the restarted worker adopts it (one recurring bill)', async () => {
    const { groupId, userId } = await newGroup('Sub Co');
    const a = await spawnChild({ CRASH_ON_FETCH: 'POST /recurring_bills$' });
    expect((await login(userId, groupId)).status).toBe(200);
    expect(await a.crashed).toMatch(/recurring_bills -> 200/);
    await kill(a);
    expect(await liveRecurring(groupId)).toHaveLength(1);
    expect((await ledger(`recurring:${TENANT}:${groupId}`))?.status).toBe('pending');
    const b = await spawnChild();
    await waitFor('the subscription to be recorded', async () => (await ledger(`recurring:${TENANT}:${groupId}`))?.status === 'done', 60_000);
    // The adoption scheduled a duplicate check (1 s later) before recording: it has run.
    await waitFor('the duplicate check to run', async () => {
      const checks = await duplicateChecks(groupId);
      return checks.length > 0 && checks.every((c) => c.status === 'done' || c.status === 'dead');
    }, 60_000);
    expect(await duplicateChecks(groupId)).toEqual([{ status: 'done' }]);
    await stop(b);
    const live = await liveRecurring(groupId);
    expect(live).toHaveLength(1);
    expect(await ledger(`recurring:${TENANT}:${groupId}`)).toMatchObject({ status: 'done', outcome: { recurringBillId: live[0]!.id } });
  });

  it('killed right after an ad-hoc bill POST was answered: the retry with the key after the claim TTL reconciles (one bill)', async () => {
    const { groupId, userId } = await newGroup('Charge Co');
    const a = await spawnChild({ CRASH_ON_FETCH: 'POST /bills$', CRASH_WORKER: '0' });
    expect((await login(userId, groupId)).status).toBe(200);
    const first = fetch(`${served.url}/test/charge`, { method: 'POST', body: JSON.stringify({ tenant: TENANT, groupId, key: 'k1' }) }).catch(() => null);
    expect(await a.crashed).toMatch(/bills -> 200/);
    await kill(a);
    await first;
    const b = await spawnChild({ CRASH_WORKER: '0' });
    let answer: { billId?: string; status?: string; error?: string } = {};
    await waitFor('the charge to be answered', async () => {
      answer = (await (await fetch(`${served.url}/test/charge`, { method: 'POST', body: JSON.stringify({ tenant: TENANT, groupId, key: 'k1' }) })).json()) as typeof answer;
      return answer.billId !== undefined;
    }, 30_000);
    await stop(b);
    const bills = (await sandbox.admin.listBills(groupId)).filter((x) => x.description === 'Charge k1' && x.status !== 'cancelled');
    expect(bills.map((x) => x.id)).toEqual([answer.billId]);
    expect(answer.status).toBe('reconciled');
  });

  it('killed mid first login (company created, group not completed): the retry finishes it with the same company', async () => {
    const { groupId, userId } = await newGroup('Login Co');
    const a = await spawnChild({ CRASH_AT: 'groups.complete', CRASH_WORKER: '0' });
    const first = login(userId, groupId);
    expect(await a.crashed).toBe('groups.complete');
    await kill(a);
    expect((await first).status).not.toBe(200);
    const b = await spawnChild();
    // Held until the dead login's claim (3 s here) expires, then provisioned.
    const retry = await login(userId, groupId);
    expect(retry.status).toBe(200);
    await waitFor('the subscription to be recorded', async () => (await ledger(`recurring:${TENANT}:${groupId}`))?.status === 'done', 60_000);
    await stop(b);
    expect(await db.sql('SELECT status FROM app_companies WHERE group_id = $1', [groupId])).toEqual([{ status: 'active' }]);
    expect(await liveRecurring(groupId)).toHaveLength(1);
  });

  it('killed mid first login (company created, group not completed), then the group is deleted: the deletion acknowledged (200) cancels the app company', async () => {
    const { groupId } = await newGroup('Deleted Co');
    const user = await sandbox.admin.createUser({ memberships: [{ groupId, role: 'Admin' }] });
    const a = await spawnChild({ CRASH_AT: 'groups.complete', CRASH_WORKER: '0' });
    const first = login(user.id, groupId);
    expect(await a.crashed).toBe('groups.complete');
    await kill(a);
    await first;
    expect(await db.sql('SELECT status FROM app_companies WHERE group_id = $1', [groupId])).toEqual([{ status: 'active' }]);
    const b = await spawnChild();
    const { delivery } = await sandbox.admin.cancelGroup(groupId, { webhook: true });
    await waitFor('the deletion webhook to be acknowledged', async () => {
      const d = (await sandbox.admin.deliveries()).find((x) => x.id === delivery?.id);
      return d?.state === 'delivered' || d?.state === 'failed';
    }, 120_000);
    const d = (await sandbox.admin.deliveries()).find((x) => x.id === delivery?.id);
    // The hook runs before the 200; still, allow the same 1.5 s as before, ending once it shows.
    const companies = () => db.sql<{ status: string }>('SELECT status FROM app_companies WHERE group_id = $1', [groupId]);
    await waitFor('the company to be cancelled', async () => (await companies()).every((c) => c.status === 'cancelled'), 1_500).catch(() => {});
    await stop(b);
    // Maestrano was told the deletion is done; the company the app created for the group must be cancelled.
    expect({ delivery: d?.state, companies: await db.sql('SELECT status FROM app_companies WHERE group_id = $1', [groupId]) }).toEqual({
      delivery: 'delivered',
      companies: [{ status: 'cancelled' }],
    });
  });

  it('killed mid first login, the user comes back after the deferrals ran out (~70 min, fast-forwarded): the company still gets its subscription', async () => {
    const { groupId, userId } = await newGroup('Late Co');
    const a = await spawnChild({ CRASH_AT: 'groups.complete', CRASH_WORKER: '0' });
    const first = login(userId, groupId);
    expect(await a.crashed).toBe('groups.complete');
    await kill(a);
    await first;
    const b = await spawnChild();
    const subscribeJob = async () =>
      (await db.sql<{ id: string; status: string; attempts: number; last_error: { message?: string } | null }>(
        "SELECT id::text AS id, status, attempts, last_error FROM maestrano_jobs WHERE type = 'billing.subscribe' AND group_id = $1",
        [groupId],
      ))[0];
    await waitFor('billing.subscribe to defer (group not provisioned)', async () => (await subscribeJob())?.last_error?.message?.includes('not provisioned') === true, 30_000);
    // Fast-forward: seven deferrals of GROUP_READY_RETRY_MS (10 min) each have happened.
    await db.sql("UPDATE maestrano_jobs SET attempts = max_attempts - 1, run_at = now() WHERE type = 'billing.subscribe' AND group_id = $1", [groupId]);
    await waitFor('the last deferral to dead-letter the job', async () => (await subscribeJob())?.status === 'dead', 30_000);
    // The user signs in again: the group is completed now, and its dead follow-up queued again.
    expect((await login(userId, groupId)).status).toBe(200);
    await waitFor('the subscription job to finish', async () => (await subscribeJob())?.status === 'done', 30_000).catch(() => {});
    const job = await subscribeJob();
    await stop(b);
    expect({ job: job?.status, live: (await liveRecurring(groupId)).length, ledger: (await ledger(`recurring:${TENANT}:${groupId}`))?.status ?? null }).toEqual({
      job: 'done',
      live: 1,
      ledger: 'done',
    });
  });
});
