import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../src/index.js';
import { type Receiver, startReceiver } from './helpers.js';

/**
 * An app that answers a webhook with a redirect (its login page, a route that is not mounted)
 * has not handled it: the platform does not follow it (Ruby's RestClient raises on a 3xx to a
 * DELETE or a POST), and never re-sends the app's credentials to wherever it points.
 */
describe('webhooks answered with a redirect', () => {
  let sb: Sandbox;
  let app: Receiver;

  beforeAll(async () => {
    app = await startReceiver((r) => (r.path.startsWith('/maestrano/') ? { status: 302, body: '', headers: { location: '/login' } } : { status: 200, body: '<p>Sign in</p>' }));
    sb = await startSandbox({ port: 0, appUrl: app.url, notifyDelayMs: 10, retryBaseMs: 20, maxDeliveryAttempts: 1 });
  });
  afterAll(async () => {
    await sb.stop();
    await app.close();
  });

  it('group deleted and Connec! notification - a 302 answer is a failed delivery, and the redirect is not followed', async () => {
    const group = await sb.admin.createGroup({ name: 'Redirected' });
    await sb.admin.createRecord(group.id, 'people', { first_name: 'Red', last_name: 'Irect' });
    await sb.admin.cancelGroup(group.id);
    const { deliveries } = await sb.admin.waitForDeliveries();
    const kinds = deliveries.map((d) => d.kind).sort();
    expect(kinds).toEqual(['account.group.deleted', 'connec.notification']);
    for (const d of deliveries) {
      expect({ kind: d.kind, state: d.state, status: d.attempts[0]?.status }).toEqual({ kind: d.kind, state: 'failed', status: 302 });
    }
    expect(app.requests.filter((r) => r.path === '/login')).toEqual([]);
  });
});
