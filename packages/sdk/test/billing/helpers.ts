import type { Logger, Runtime, Tenant, TenantRegistry } from '../../src/core/types.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { afterAll, beforeAll, beforeEach, vi } from 'vitest';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';

export function makeTenant(
  api: { url: string; apiId: string; apiKey: string },
  overrides: { name?: string; creationMode?: 'real' | 'virtual' } = {},
): Tenant {
  return {
    name: overrides.name ?? 'maestrano-uat',
    nid: null,
    environment: null,
    app: { host: 'http://127.0.0.1:1' },
    api: { id: api.apiId, key: api.apiKey, host: api.url, base: '/api/v1/' },
    sso: {
      enabled: true,
      sloEnabled: true,
      idm: 'http://127.0.0.1:1',
      initPath: '/maestrano/auth/saml/init/:tenant',
      consumePath: '/maestrano/auth/saml/consume/:tenant',
      idp: api.url,
      nameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
      creationMode: overrides.creationMode ?? 'real',
      x509Certificate: null,
      x509Fingerprint: null,
    },
    connec: { enabled: false, host: api.url, basePath: '/api/v2', timeoutMs: 60_000, externalIds: false },
    webhooks: {
      account: {
        groupPath: '/maestrano/account/groups/:id/:tenant',
        groupUserPath: '/maestrano/account/groups/:group_id/users/:id/:tenant',
      },
      connec: { notificationPath: '/maestrano/connec/notifications/:tenant', initializationPath: null },
    },
  };
}

export function registry(...tenants: Tenant[]): TenantRegistry {
  return { get: (name) => tenants.find((t) => t.name === name), list: () => tenants };
}

export interface CapturedLog {
  level: string;
  message: string;
  fields: Record<string, unknown> | undefined;
}

export function captureLogger(): Logger & { entries: CapturedLog[] } {
  const entries: CapturedLog[] = [];
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    entries.push({ level, message, fields });
  };
  return { entries, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

export function makeRuntime(storage: StorageAdapter, tenants: Tenant[], clock: () => Date = () => new Date()) {
  const logger = captureLogger();
  const runtime: Runtime = {
    tenants: registry(...tenants),
    storage,
    logger,
    clock,
    instanceId: 'test-instance',
    fetch: globalThis.fetch,
  };
  return { runtime, logger };
}

/** Stores a provisioned group (the state SSO provisioning leaves). */
export async function provisionGroup(
  storage: StorageAdapter,
  tenant: string,
  groupId: string,
  data: { companyId?: string; trialEndsAt?: Date | null } = {},
) {
  const claim = await storage.groups.claim(tenant, groupId, { owner: 'seed', ttlMs: 60_000 });
  if (claim.state !== 'claimed') throw new Error(`seed: group ${groupId} already exists`);
  return storage.groups.complete(tenant, groupId, 'seed', {
    companyId: data.companyId ?? `company-${groupId}`,
    trialEndsAt: data.trialEndsAt ?? null,
  });
}

/** Stores a provisioned user with active memberships of `groupIds`. */
export async function provisionUser(storage: StorageAdapter, tenant: string, uid: string, groupIds: string[]) {
  const claim = await storage.users.claim(tenant, uid, { owner: 'seed', ttlMs: 60_000 });
  if (claim.state !== 'claimed') throw new Error(`seed: user ${uid} already exists`);
  const user = await storage.users.complete(tenant, uid, 'seed', { userId: `user-${uid}` });
  for (const groupId of groupIds) await storage.users.upsertMembership(tenant, uid, groupId, 'Member');
  return user;
}

export function basicAuth(id: string, key: string): string {
  return `Basic ${Buffer.from(`${id}:${key}`).toString('base64')}`;
}

export function resetServer(api: AccountApiServer) {
  api.groups.clear();
  api.users.clear();
  api.bills.clear();
  api.recurringBills.clear();
  api.requests.length = 0;
  api.faults.length = 0;
  api.held.length = 0;
}

/**
 * A storage adapter whose `ledger.complete` fails `times` times: the process "crashes"
 * after the POST and before the outcome is recorded. With `at: { op: 'claim', keyPrefix }`
 * it is the `times` first `ledger.claim` calls of keys starting with `keyPrefix` that fail
 * (e.g. `chargebill:`: a crash right after the POST, before anything about the bill is stored).
 * With `at.error`, the failure thrown is that error (e.g. a `StorageError`: an outage, not a crash).
 */
export function crashingLedger(
  storage: StorageAdapter,
  times = 1,
  at: { op?: 'claim' | 'complete'; keyPrefix?: string; error?: () => Error } = {},
): StorageAdapter & { crashes: number } {
  let remaining = times;
  const op = at.op ?? 'complete';
  const crash = (key: string) => {
    if (remaining > 0 && key.startsWith(at.keyPrefix ?? '')) {
      remaining--;
      wrapped.crashes++;
      throw at.error ? at.error() : new Error('simulated crash between the POST and recording the outcome');
    }
  };
  const wrapped = {
    ...storage,
    crashes: 0,
    ledger: {
      ...storage.ledger,
      get: storage.ledger.get.bind(storage.ledger),
      claim: async (key: string, options: Parameters<StorageAdapter['ledger']['claim']>[1]) => {
        if (op === 'claim') crash(key);
        return storage.ledger.claim(key, options);
      },
      release: storage.ledger.release.bind(storage.ledger),
      complete: async (key: string, owner: string, outcome: Parameters<StorageAdapter['ledger']['complete']>[2]) => {
        if (op === 'complete') crash(key);
        return storage.ledger.complete(key, owner, outcome);
      },
    },
  };
  return wrapped;
}

/** Resolves after `ms`, or rejects with the signal's reason once it aborts (a slow network). */
export { sleep as delay } from '../../src/internal/sleep.js';

/**
 * A `fetch` whose first POST is sent and its answer lost (`fetch failed`): the platform only
 * gets it when the test calls `land()`, like a request that reaches it after the caller gave
 * up. Every other request goes to `next` (default: the network).
 */
export function losingFirstPost(next: (req: Request) => Promise<Response> = (req) => fetch(req)) {
  let stuck: Request | null = null;
  const fetchImpl = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    if (req.method === 'POST' && stuck === null) {
      stuck = req.clone();
      throw new TypeError('fetch failed');
    }
    return next(req);
  }) as typeof fetch;
  return {
    fetch: fetchImpl,
    /** Whether the first POST was sent (and lost). */
    get sent(): boolean {
      return stuck !== null;
    },
    /** The lost POST reaches the platform now. */
    land(): Promise<Response> {
      if (!stuck) throw new Error('no POST was lost yet');
      return fetch(stuck);
    },
  };
}

/**
 * A loopback Account API for the calling test file: started before its tests, reset (knowing
 * `groups`) before each, closed after them. Read it through the returned function in tests.
 */
export function useAccountApi(...groups: string[]): () => AccountApiServer {
  let api: AccountApiServer | undefined;
  const server = () => {
    if (!api) throw new Error('the Account API test server is not started');
    return api;
  };
  beforeAll(async () => {
    api = await startAccountApiServer();
  });
  afterAll(async () => {
    await api?.close();
  });
  beforeEach(() => {
    resetServer(server());
    for (const group of groups) server().addGroup(group);
  });
  return server;
}

/**
 * Settles `pending` on fake timers (`vi.useFakeTimers()` first: Date and performance included),
 * advancing them 5 ms at a time. For the webhooks' short seats-lock leases (a few hundred ms,
 * renewed every third, read as lost after three quarters without a confirmed renewal): on real
 * time, an event-loop stall of that order on a loaded machine makes a write read its lock as lost
 * and answer 503, where nothing else took it.
 */
export async function settleOnFakeTime<T>(pending: Promise<T>): Promise<T> {
  let settled = false;
  const done = pending.finally(() => {
    settled = true;
  });
  while (!settled) await vi.advanceTimersByTimeAsync(5);
  return done;
}
