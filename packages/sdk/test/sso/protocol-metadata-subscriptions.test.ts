import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness, testIdp } from './harness.js';

/**
 * PROTOCOL §2: the metadata document's `webhook` group is `account.{groups_path,
 * group_users_path}` and `connec.{notifications_path, subscriptions}`; §1.2/§6.12: the
 * `webhook.connec.subscriptions` map (`entity_name -> bool`, default `{}`) is how a
 * marketplace that reads the metadata learns which Connec! collections to notify the app of.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    extraTenants: (baseUrl) => [
      {
        ...testIdp().marketplace({ name: 'subs-market', appHost: baseUrl, apiId: 'app-subs', apiKey: 'subs-api-key' }),
        webhook: { connec: { subscriptions: { organizations: true, people: true, invoices: false } } },
      },
    ],
  });
});
afterAll(async () => {
  await h.close();
});

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

async function metadata(tenant: string, id: string, key: string): Promise<Record<string, Record<string, Record<string, unknown>>>> {
  const res = await fetch(`${h.baseUrl}/maestrano/metadata/${tenant}`, { headers: { authorization: basic(id, key) } });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, Record<string, Record<string, unknown>>>;
}

describe('metadata document: webhook.connec.subscriptions (PROTOCOL §2)', () => {
  it('publishes the configured subscriptions map', async () => {
    const body = await metadata('subs-market', 'app-subs', 'subs-api-key');
    expect(body['webhook']?.['connec']?.['subscriptions']).toEqual({ organizations: true, people: true, invoices: false });
    expect(body['webhook']?.['connec']?.['notifications_path']).toBe('/maestrano/connec/notifications/subs-market');
  });

  it('publishes an empty map when none is configured (the legacy default)', async () => {
    const body = await metadata(h.tenant, 'app-test-1', 'test-api-key-1');
    expect(body['webhook']?.['connec']?.['subscriptions']).toEqual({});
  });
});
