import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Sandbox, SandboxAdminError, startSandbox } from '../src/index.js';
import { decodeBasic, type ReceivedRequest, type Receiver, startReceiver } from './helpers.js';

type Json = Record<string, unknown>;

/**
 * The connector control calls the platform makes to the app (PROTOCOL §5.4): the admin action
 * `syncControl` / `POST /__admin/groups/:id/sync` and the group page's buttons. The "app" is a
 * loopback server that records every request and answers as the SDK's control endpoints do.
 */
describe('connector control calls to the app (PROTOCOL §5.4)', () => {
  let sb: Sandbox;
  let app: Receiver;
  /** The groups the fake app knows, with their sync switch. */
  const known = new Map<string, boolean>();
  /** When set, the app answers this instead (an app failing on purpose). */
  let forced: { status: number; body: string } | null = null;
  let alphaGroup: string;
  let betaGroup: string;

  const answer = (status: number, body: unknown) => ({ status, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

  /** Answers like the SDK's control endpoints (credentials, group lookup, toggle, status). */
  const fakeApp = (r: ReceivedRequest) => {
    if (forced) return { ...forced, headers: { 'content-type': 'application/json' } };
    const url = new URL(r.path, 'http://app.test');
    if (!url.pathname.includes('/synchronizations')) return null;
    const creds = decodeBasic(r.headers.authorization);
    const tenant = sb.credentials.marketplaces.find((m) => m.apiId === creds?.user && m.apiKey === creds.password);
    if (!tenant || !url.pathname.startsWith(`/maestrano/${tenant.name}/`)) return answer(401, { error: 'Invalid credentials' });
    const params = (r.body ? JSON.parse(r.body) : {}) as Json;
    const groupId = r.method === 'GET' ? decodeURIComponent(url.pathname.split('/').pop() ?? '') : params.group_id;
    if (typeof groupId !== 'string' || !known.has(groupId)) return answer(404, { errors: [{ message: 'Organization not found', code: 404 }] });
    if (url.pathname.endsWith('/toggle_sync')) known.set(groupId, !known.get(groupId));
    const enabled = known.get(groupId) ?? true;
    const status = enabled ? (r.method === 'POST' ? 'ENQUEUED' : 'SUCCESS') : 'DISABLED';
    return answer(r.method === 'POST' ? 201 : 200, { group_id: groupId, sync_enabled: enabled, status });
  };

  const docOf = async (marketplace: string) => {
    const doc = (await sb.admin.marketplaces()).find((d) => d.marketplace === marketplace);
    if (!doc) throw new Error(`no document for ${marketplace}`);
    return doc.app as Record<string, string>;
  };
  const credentialsOf = (marketplace: string) => {
    const m = sb.credentials.marketplaces.find((x) => x.name === marketplace);
    return { user: m?.apiId, password: m?.apiKey };
  };
  const form = (path: string, body = '') =>
    fetch(`${sb.url}${path}`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });

  beforeAll(async () => {
    app = await startReceiver(fakeApp);
    sb = await startSandbox({ port: 0, appUrl: app.url, marketplaces: ['alpha', 'beta'], retryBaseMs: 20, maxDeliveryAttempts: 4, notifyDelayMs: 10 });
    alphaGroup = (await sb.admin.createGroup({ marketplace: 'alpha', id: 'cld-alpha1' })).id;
    betaGroup = (await sb.admin.createGroup({ marketplace: 'beta', id: 'cld-beta1' })).id;
  });
  afterAll(async () => {
    await sb.stop();
    await app.close();
  });
  beforeEach(() => {
    app.requests.length = 0;
    forced = null;
    known.clear();
    known.set(alphaGroup, true);
    known.set(betaGroup, true);
  });

  it("start - POSTs {group_id, opts} as JSON to app.host + the advertised start path, with the Basic credentials of the group's marketplace", async () => {
    const result = await sb.admin.syncControl({ groupId: betaGroup, action: 'start' });
    expect(app.requests).toHaveLength(1);
    const [req] = app.requests;
    const paths = await docOf('beta');
    expect(paths.synchronization_start_path).toBe('/maestrano/beta/synchronizations');
    expect(req?.method).toBe('POST');
    expect(req?.path).toBe(paths.synchronization_start_path);
    expect(decodeBasic(req?.headers.authorization)).toEqual(credentialsOf('beta'));
    expect(req?.headers['content-type']).toContain('application/json');
    expect(JSON.parse(req?.body ?? 'null')).toEqual({ group_id: betaGroup, opts: {} });
    expect(result).toMatchObject({
      action: 'start',
      groupId: betaGroup,
      method: 'POST',
      url: `${app.url}/maestrano/beta/synchronizations`,
      requestBody: { group_id: betaGroup, opts: {} },
      status: 201,
      body: { group_id: betaGroup, sync_enabled: true, status: 'ENQUEUED' },
      error: null,
    });
  });

  it('full sync - the start body carries opts.full_sync: true', async () => {
    const result = await sb.admin.syncControl({ groupId: alphaGroup, action: 'start', fullSync: true });
    expect(app.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /maestrano/alpha/synchronizations']);
    expect(JSON.parse(app.requests[0]?.body ?? 'null')).toEqual({ group_id: alphaGroup, opts: { full_sync: true } });
    expect(decodeBasic(app.requests[0]?.headers.authorization)).toEqual(credentialsOf('alpha'));
    expect(result.status).toBe(201);
  });

  it('status - GETs the advertised status path with the group id in place of its parameter, without a body', async () => {
    const paths = await docOf('alpha');
    expect(paths.synchronization_status_path).toBe('/maestrano/alpha/synchronizations/:cld-uid');
    const result = await sb.admin.syncControl({ groupId: alphaGroup, action: 'status' });
    expect(app.requests).toHaveLength(1);
    const [req] = app.requests;
    expect(req?.method).toBe('GET');
    expect(req?.path).toBe(paths.synchronization_status_path?.replace(':cld-uid', alphaGroup));
    expect(req?.body).toBe('');
    expect(decodeBasic(req?.headers.authorization)).toEqual(credentialsOf('alpha'));
    expect(result).toMatchObject({ method: 'GET', requestBody: null, status: 200, body: { group_id: alphaGroup, status: 'SUCCESS', sync_enabled: true } });
  });

  it('toggle - PUTs {group_id} to the advertised toggle path; a second toggle switches back', async () => {
    const paths = await docOf('beta');
    const off = await sb.admin.syncControl({ groupId: betaGroup, action: 'toggle' });
    const on = await sb.admin.syncControl({ groupId: betaGroup, action: 'toggle' });
    expect(app.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`PUT ${paths.synchronization_toggle_path}`, `PUT ${paths.synchronization_toggle_path}`]);
    expect(paths.synchronization_toggle_path).toBe('/maestrano/beta/synchronizations/toggle_sync');
    for (const r of app.requests) {
      expect(JSON.parse(r.body)).toEqual({ group_id: betaGroup });
      expect(decodeBasic(r.headers.authorization)).toEqual(credentialsOf('beta'));
    }
    expect(off.body).toMatchObject({ sync_enabled: false, status: 'DISABLED' });
    expect(on.body).toMatchObject({ sync_enabled: true });
    expect(known.get(betaGroup)).toBe(true);
  });

  it('update_metadata - PUTs {group_id} beside the toggle path', async () => {
    const result = await sb.admin.syncControl({ groupId: alphaGroup, action: 'update_metadata' });
    expect(app.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['PUT /maestrano/alpha/synchronizations/update_metadata']);
    expect(JSON.parse(app.requests[0]?.body ?? 'null')).toEqual({ group_id: alphaGroup });
    expect(result.status).toBe(200);
  });

  it('an unknown group is refused by the admin API with 404 and nothing is sent', async () => {
    const before = (await sb.admin.deliveries()).length;
    const raw = await fetch(`${sb.url}/__admin/groups/cld-nope/sync`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ action: 'start' }) });
    expect(raw.status).toBe(404);
    expect(await raw.json()).toEqual({ error: { field: 'group_id', message: 'Unknown group cld-nope' } });
    const thrown = await sb.admin.syncControl({ groupId: 'cld-nope', action: 'status' }).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(SandboxAdminError);
    expect((thrown as SandboxAdminError).status).toBe(404);
    expect(app.requests).toHaveLength(0);
    expect((await sb.admin.deliveries()).length).toBe(before);
  });

  it('an unknown action or a fullSync that is not a boolean is refused with 400 and nothing is sent', async () => {
    const post = (body: Json) => fetch(`${sb.url}/__admin/groups/${alphaGroup}/sync`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const bad = await post({ action: 'restart' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: Json }).error.field).toBe('action');
    const badFull = await post({ action: 'start', fullSync: 'yes' });
    expect(badFull.status).toBe(400);
    expect(((await badFull.json()) as { error: Json }).error.field).toBe('fullSync');
    const fullStatus = await post({ action: 'status', fullSync: true });
    expect(fullStatus.status).toBe(400);
    expect(app.requests).toHaveLength(0);
  });

  it("the app's error status and JSON body are passed back, sent once (no retry) and logged as a failed delivery", async () => {
    known.delete(alphaGroup);
    const missing = await sb.admin.syncControl({ groupId: alphaGroup, action: 'status' });
    expect(missing).toMatchObject({ status: 404, body: { errors: [{ message: 'Organization not found', code: 404 }] }, error: 'HTTP 404' });
    forced = { status: 500, body: '{"error":"boom"}' };
    const broken = await sb.admin.syncControl({ groupId: alphaGroup, action: 'start' });
    expect(broken).toMatchObject({ status: 500, body: { error: 'boom' }, text: '{"error":"boom"}', error: 'HTTP 500' });
    forced = { status: 502, body: 'Bad gateway' };
    const notJson = await sb.admin.syncControl({ groupId: alphaGroup, action: 'toggle' });
    expect(notJson).toMatchObject({ status: 502, body: null, text: 'Bad gateway' });
    const { idle } = await sb.admin.waitForDeliveries(2_000);
    expect(idle).toBe(true);
    expect(app.requests).toHaveLength(3);
    const log = await sb.admin.deliveries();
    const entry = log.find((d) => d.id === broken.delivery.id);
    expect(entry).toMatchObject({ kind: 'sync.start', method: 'POST', state: 'failed', nextAttemptAt: null, response: { status: 500, body: '{"error":"boom"}' } });
    expect(entry?.attempts).toEqual([expect.objectContaining({ status: 500, error: 'HTTP 500' })]);
  });

  it('an app that does not answer gives status null with the network error', async () => {
    const closed = await startReceiver();
    const url = closed.url;
    await closed.close();
    const lone = await startSandbox({ port: 0, appUrl: url, deliveryTimeoutMs: 2_000 });
    try {
      const g = await lone.admin.createGroup({});
      const result = await lone.admin.syncControl({ groupId: g.id, action: 'status' });
      expect(result.status).toBeNull();
      expect(result.body).toBeNull();
      expect(result.error).toMatch(/fetch failed|ECONNREFUSED/);
      expect((await lone.admin.deliveries())[0]).toMatchObject({ kind: 'sync.status', state: 'failed' });
    } finally {
      await lone.stop();
    }
  });

  it('successful calls are logged with the app answer and listed in /ui/deliveries', async () => {
    const result = await sb.admin.syncControl({ groupId: betaGroup, action: 'status' });
    const entry = (await sb.admin.deliveries()).find((d) => d.id === result.delivery.id);
    expect(entry).toMatchObject({ kind: 'sync.status', marketplace: 'beta', method: 'GET', url: `${app.url}/maestrano/beta/synchronizations/${betaGroup}`, body: null, state: 'delivered' });
    expect(JSON.parse(entry?.response?.body ?? 'null')).toEqual({ group_id: betaGroup, sync_enabled: true, status: 'SUCCESS' });
    const page = await (await fetch(`${sb.url}/ui/deliveries`)).text();
    expect(page).toContain('sync.status');
    expect(page).toContain(`GET ${app.url}/maestrano/beta/synchronizations/${betaGroup}`);
  });

  it('the group page has the Synchronization buttons, each calls the app and the page shows its status code and JSON', async () => {
    const page = await (await fetch(`${sb.url}/ui/groups/${alphaGroup}`)).text();
    expect(page).toContain(`<form method="post" action="/ui/groups/${alphaGroup}/sync">`);
    for (const [value, label] of [
      ['start', 'Start sync'],
      ['full', 'Full sync'],
      ['status', 'Sync status'],
      ['toggle', 'Toggle sync'],
    ]) {
      expect(page).toContain(`<button type="submit" name="action" value="${value}">${label}</button>`);
    }
    const press = async (value: string) => {
      const res = await form(`/ui/groups/${alphaGroup}/sync`, `action=${value}`);
      expect(res.status).toBe(302);
      const location = res.headers.get('location') ?? '';
      expect(location).toMatch(new RegExp(`^/ui/groups/${alphaGroup}\\?sync=dlv-[^#]+#sync$`));
      return (await fetch(`${sb.url}${location}`)).text();
    };

    const started = await press('start');
    expect(JSON.parse(app.requests.at(-1)?.body ?? 'null')).toEqual({ group_id: alphaGroup, opts: {} });
    expect(started).toContain(`Start sync: <code>POST ${app.url}/maestrano/alpha/synchronizations</code>`);
    expect(started).toContain('The app answered <b id="sync-status">201</b>');
    expect(started).toContain('&quot;status&quot;: &quot;ENQUEUED&quot;');

    const full = await press('full');
    expect(JSON.parse(app.requests.at(-1)?.body ?? 'null')).toEqual({ group_id: alphaGroup, opts: { full_sync: true } });
    expect(full).toContain('Full sync: <code>POST');

    const status = await press('status');
    expect(app.requests.at(-1)).toMatchObject({ method: 'GET', path: `/maestrano/alpha/synchronizations/${alphaGroup}` });
    expect(status).toContain('The app answered <b id="sync-status">200</b>');
    expect(status).toContain('&quot;status&quot;: &quot;SUCCESS&quot;');

    const toggled = await press('toggle');
    expect(app.requests.at(-1)).toMatchObject({ method: 'PUT', path: '/maestrano/alpha/synchronizations/toggle_sync' });
    expect(known.get(alphaGroup)).toBe(false);
    expect(toggled).toContain('&quot;sync_enabled&quot;: false');
    expect(toggled).toContain('&quot;status&quot;: &quot;DISABLED&quot;');

    known.delete(alphaGroup);
    const refused = await press('status');
    expect(refused).toContain('The app answered <b id="sync-status">404</b>');
    expect(refused).toContain('Organization not found');
    expect(app.requests).toHaveLength(5);
  });

  it('the group page refuses an unknown button value with 400 and an unknown group with 404, sending nothing', async () => {
    const bad = await form(`/ui/groups/${alphaGroup}/sync`, 'action=reboot');
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('Unknown synchronization action');
    const missing = await form('/ui/groups/cld-nope/sync', 'action=start');
    expect(missing.status).toBe(404);
    expect(app.requests).toHaveLength(0);
  });
});
