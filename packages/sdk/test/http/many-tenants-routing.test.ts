// One deployment serving hundreds of marketplaces: the router finds a request's route without
// trying every route of every tenant, so what a request costs does not grow with the tenants.
// Counted on a real code path: each route of a tenant with a `:id` segment that a request
// reaches decodes that segment (`decodeURIComponent`) before its last segment (the tenant's
// name) is compared, so a router that tries every tenant decodes once per tenant.
import { createMaestrano, type Logger, memoryAdapter, parseMarketplacesDocument, staticTenants } from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';

const { certificate } = createTestCertificate({ bits: 1024 });
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const marketplace = (name: string) => ({
  marketplace: name,
  app: { host: 'https://app.example.com' },
  api: { id: `app-${name}`, key: `key-${name}`, host: 'https://api-hub.example.com' },
  sso: { x509_certificate: certificate },
});
const build = (count: number) =>
  createMaestrano({
    tenants: staticTenants(
      parseMarketplacesDocument({ marketplaces: Array.from({ length: count }, (_, i) => marketplace(`mkt-${i}`)) }, 'maestrano.json'),
    ),
    storage: memoryAdapter(),
    provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
    onLogin: () => new Response('ok'),
    logger: quiet,
  });
const basic = (id: string, key: string) => `Basic ${Buffer.from(`${id}:${key}`).toString('base64')}`;

/** How many `decodeURIComponent` calls routing one group deletion webhook for `tenant` makes. */
async function decodesFor(mno: ReturnType<typeof build>, tenant: string): Promise<{ status: number; decodes: number }> {
  // Once first: the route index (or the compiled routes) of the tenant list is built lazily.
  await mno.handler(new Request(`https://app.example.com/maestrano/metadata/${tenant}`));
  const spy = vi.spyOn(globalThis, 'decodeURIComponent');
  try {
    const response = await mno.handler(
      new Request(`https://app.example.com/maestrano/account/groups/cld-1/${tenant}`, {
        method: 'DELETE',
        headers: { authorization: basic(`app-${tenant}`, 'stale-key') },
      }),
    );
    return { status: response.status, decodes: spy.mock.calls.length };
  } finally {
    spy.mockRestore();
  }
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('routing with hundreds of marketplaces', () => {
  it('does as much work per request with 400 marketplaces as with 2', async () => {
    const few = await decodesFor(build(2), 'mkt-1');
    const many = await decodesFor(build(400), 'mkt-321');
    expect(few.status).toBe(401);
    expect(many.status).toBe(401);
    expect(many.decodes).toBe(few.decodes);
  });

  it('answers a request naming no marketplace with as much work with 400 marketplaces as with 2', async () => {
    // Shaped like a member removal (DELETE, seven segments, an id where `:group_id` is) but with
    // `members` for `users`: compared with every route that names a tenant, it matches none.
    const unknown = async (mno: ReturnType<typeof build>) => {
      await mno.handler(new Request('https://app.example.com/maestrano/metadata/mkt-0'));
      const spy = vi.spyOn(globalThis, 'decodeURIComponent');
      try {
        const response = await mno.handler(
          new Request('https://app.example.com/maestrano/account/groups/cld-1/members/usr-1/gone', { method: 'DELETE' }),
        );
        return { status: response.status, decodes: spy.mock.calls.length };
      } finally {
        spy.mockRestore();
      }
    };
    const few = await unknown(build(2));
    const many = await unknown(build(400));
    expect(few.status).toBe(404);
    expect(many.status).toBe(404);
    expect(many.decodes).toBe(few.decodes);
  });

  it('still routes each marketplace to itself', async () => {
    const mno = build(400);
    for (const name of ['mkt-0', 'mkt-199', 'mkt-399']) {
      const response = await mno.handler(
        new Request(`https://app.example.com/maestrano/metadata/${name}`, { headers: { authorization: basic(`app-${name}`, `key-${name}`) } }),
      );
      expect(response.status).toBe(200);
      expect(((await response.json()) as { marketplace: string }).marketplace).toBe(name);
    }
    const unknown = await mno.handler(new Request('https://app.example.com/maestrano/metadata/mkt-400'));
    expect(unknown.status).toBe(404);
  });
});

describe('the refusal log with hundreds of marketplaces', () => {
  it('still logs each marketplace, route and reason at most once a minute', async () => {
    const refusals: Record<string, unknown>[] = [];
    const count = 400;
    const mno = createMaestrano({
      tenants: staticTenants(
        parseMarketplacesDocument({ marketplaces: Array.from({ length: count }, (_, i) => marketplace(`mkt-${i}`)) }, 'maestrano.json'),
      ),
      storage: memoryAdapter(),
      provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
      onLogin: () => new Response('ok'),
      logger: { ...quiet, warn: (message, fields = {}) => (message.includes('refused (401)') ? refusals.push(fields) : undefined) },
    });
    const del = (tenant: string, authorization?: string) =>
      mno.handler(
        new Request(`https://app.example.com/maestrano/account/groups/cld-1/${tenant}`, {
          method: 'DELETE',
          headers: authorization ? { authorization } : {},
        }),
      );
    // A scanner (or a misconfigured platform) reaching every marketplace's webhook three ways:
    // 1,200 distinct marketplace/route/reason entries within the minute.
    for (let i = 0; i < count; i++) {
      expect((await del(`mkt-${i}`)).status).toBe(401);
      expect((await del(`mkt-${i}`, basic(`app-mkt-${i}`, 'stale'))).status).toBe(401);
      expect((await del(`mkt-${i}`, basic('someone-else', 'x'))).status).toBe(401);
    }
    expect(refusals).toHaveLength(3 * count);
    // The same refusals again within the minute: none is logged again.
    for (const i of [0, 1, 199, 399]) {
      expect((await del(`mkt-${i}`)).status).toBe(401);
      expect((await del(`mkt-${i}`, basic(`app-mkt-${i}`, 'stale'))).status).toBe(401);
    }
    expect(refusals).toHaveLength(3 * count);
  });
});
