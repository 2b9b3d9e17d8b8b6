// Several marketplaces may share one webhook path without naming the marketplace (the router
// picks the tenant by the request's credentials). After a key rotation on one of them, the
// refusal log (at most once a minute per marketplace, route and reason, docs/getting-started.md)
// says which marketplace's key is stale: the one whose api.id the request carries. Only when no
// marketplace (or several) has that api.id does it say `tenant: null`, listing the candidates.
import { createMaestrano, type Logger, memoryAdapter, parseMarketplacesDocument, staticTenants } from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';

const { certificate } = createTestCertificate({ bits: 1024 });
const logs: Record<string, unknown>[] = [];
const lines: string[] = [];
const logger: Logger = {
  debug() {},
  info() {},
  error() {},
  warn: (message, fields = {}) => {
    lines.push(`${message} ${JSON.stringify(fields)}`);
    if (message.includes('refused (401)')) logs.push(fields);
  },
};
const marketplace = (name: string) => ({
  marketplace: name,
  app: { host: 'https://app.example.com' },
  api: { id: `app-${name}`, key: `key-${name}`, host: 'https://api-hub.example.com' },
  sso: { x509_certificate: certificate },
  webhooks: { account: { group_path: '/hooks/groups/:id' } },
});
const mno = createMaestrano({
  tenants: staticTenants(parseMarketplacesDocument({ marketplaces: [marketplace('one'), marketplace('two')] }, 'maestrano.json')),
  storage: memoryAdapter(),
  provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
  onLogin: () => new Response('ok'),
  logger,
});
const basic = (id: string, key: string) => `Basic ${Buffer.from(`${id}:${key}`).toString('base64')}`;
const del = (authorization: string) =>
  mno.handler(new Request('https://app.example.com/hooks/groups/cld-1', { method: 'DELETE', headers: { authorization } }));

describe('a webhook on a path two marketplaces share, refused for a stale key', () => {
  it("is logged naming the marketplace whose api.id it carries, once a minute per marketplace", async () => {
    expect((await del(basic('app-one', 'key-one-old'))).status).toBe(401);
    expect((await del(basic('app-two', 'key-two-old'))).status).toBe(401);
    expect(logs).toEqual([
      { tenant: 'one', route: 'groupDeleted', refused: 'wrong api.key' },
      { tenant: 'two', route: 'groupDeleted', refused: 'wrong api.key' },
    ]);
    // The same marketplace's stale key again within the minute: not logged again.
    expect((await del(basic('app-one', 'key-one-older'))).status).toBe(401);
    expect(logs).toHaveLength(2);
  });

  it('names no marketplace for an api.id none of them has, and never logs the key', async () => {
    expect((await del(basic('app-three', 'key-three-secret'))).status).toBe(401);
    expect(logs.at(-1)).toEqual({ tenant: null, route: 'groupDeleted', refused: 'unknown api.id', tenants: ['one', 'two'] });
    expect(lines.join('\n')).not.toMatch(/key-(one|two|three)/);
  });
});
