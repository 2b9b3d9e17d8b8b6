import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('metadata endpoint (checklist 1.1.1)', () => {
  const url = () => `${h.baseUrl}/maestrano/metadata/${h.tenant}`;

  it('answers the PROTOCOL §2 document with the right credentials, without any secret', async () => {
    const res = await fetch(url(), { headers: { authorization: basic('app-test-1', 'test-api-key-1') } });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain('test-api-key-1');
    const body = JSON.parse(text) as Record<string, Record<string, unknown>>;
    expect(body['api']).toMatchObject({ id: 'app-test-1', lang: 'node', verify_ssl_certs: true });
    expect(body['api']).not.toHaveProperty('key');
    expect(body['api']).not.toHaveProperty('token');
    expect(body['sso']).toMatchObject({
      enabled: true,
      init_path: `/maestrano/auth/saml/init/${h.tenant}`,
      consume_path: `/maestrano/auth/saml/consume/${h.tenant}`,
      idm: h.baseUrl,
      creation_mode: 'real',
      name_id_format: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
    });
    expect(body['webhook']).toMatchObject({
      account: {
        groups_path: `/maestrano/account/groups/:id/${h.tenant}`,
        group_users_path: `/maestrano/account/groups/:group_id/users/:id/${h.tenant}`,
      },
    });
  });

  it('refuses a wrong key, a wrong id, another tenant-like pair and missing credentials with 401', async () => {
    for (const authorization of [basic('app-test-1', 'wrong'), basic('app-other', 'test-api-key-1'), 'Bearer x', undefined]) {
      const res = await fetch(url(), { headers: authorization ? { authorization } : {} });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic/);
      const body = await res.text();
      expect(body).not.toContain('app-test-1');
      expect(body).not.toContain('test-api-key-1');
    }
  });

  it('serves SP SAML metadata XML (entity id = api id, ACS, persistent NameID)', async () => {
    const res = await fetch(`${h.baseUrl}/maestrano/auth/saml/metadata/${h.tenant}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('samlmetadata+xml');
    const xml = await res.text();
    expect(xml).toContain('entityID="app-test-1"');
    expect(xml).toContain(`Location="${h.acsUrl}"`);
    expect(xml).toContain('WantAssertionsSigned="true"');
    expect(xml).toContain('nameid-format:persistent');
  });
});

describe('SSO init (PROTOCOL §3.2)', () => {
  it('redirects to the IdP with a raw-DEFLATE AuthnRequest and forwards only group_id', async () => {
    const started = await h.init(h.tenant, '?group_id=cld-42&redirect_to=https%3A%2F%2Fevil.example&evil=1');
    expect(started.status).toBe(302);
    const location = new URL(started.location);
    expect(`${location.origin}${location.pathname}`).toBe(`${h.idp.issuer}/api/v1/auth/saml`);
    expect([...location.searchParams.keys()].sort()).toEqual(['SAMLRequest', 'group_id']);
    expect(location.searchParams.get('group_id')).toBe('cld-42');
    const xml = inflateRawSync(Buffer.from(location.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
    expect(xml).toMatch(/^<samlp:AuthnRequest /);
    expect(xml).toContain('<saml:Issuer>app-test-1</saml:Issuer>');
    expect(xml).toContain(`AssertionConsumerServiceURL="${h.acsUrl}"`);
    expect(xml).toContain('Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"');
    expect(xml).toMatch(/ID="_[0-9a-f-]{36}"/);
    // The request id is bound to the browser by an HttpOnly signed cookie.
    expect(started.cookie).toMatch(/^mno_sso_req_maestrano-test=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  });

  it('mno.sso.initUrl and logoutUrl build the documented URLs', () => {
    expect(h.mno.sso.initUrl(h.tenant, { groupId: 'cld-1' })).toBe(`${h.baseUrl}/maestrano/auth/saml/init/${h.tenant}?group_id=cld-1`);
    expect(h.mno.sso.logoutUrl({ tenant: h.tenant, uid: 'usr-1' })).toBe(`${h.idp.issuer}/app_logout?user_uid=usr-1`);
  });
});

describe('mno.sso.checkSession (PROTOCOL §3.6) against a loopback IdP', () => {
  it('makes no call before mno_session_recheck, one call after, and reports an ended session', async () => {
    const calls: string[] = [];
    let valid = true;
    let recheck = '2030-01-01T00:03:00Z';
    const idpServer = createServer((req, res) => {
      calls.push(req.url ?? '');
      // The IdP's own clock is the test's (its `recheck` values are in that time).
      res.setHeader('date', now.toUTCString());
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(valid ? { valid: true, recheck } : { valid: false }));
    });
    await new Promise<void>((resolve) => idpServer.listen(0, '127.0.0.1', resolve));
    const idpUrl = `http://127.0.0.1:${(idpServer.address() as AddressInfo).port}`;
    let now = new Date('2030-01-01T00:00:00Z');
    const fresh = await startHarness({ tenantSso: { idp: idpUrl }, clock: () => now });
    try {
      const stored = { tenant: fresh.tenant, uid: 'usr-1', groupUid: 'cld-1', session: 'tok-secret', recheck: '2030-01-01T00:01:00Z' };
      const early = await fresh.mno.sso.checkSession(stored);
      expect(early).toEqual({ valid: true, session: stored, checked: false });
      expect(calls).toEqual([]);

      now = new Date('2030-01-01T00:02:00Z');
      const due = await fresh.mno.sso.checkSession(stored);
      expect(due).toEqual({ valid: true, checked: true, session: { ...stored, recheck: '2030-01-01T00:03:00.000Z' } });
      expect(calls).toEqual(['/api/v1/auth/saml/usr-1?session=tok-secret']);

      // A next check time written without a zone is UTC, whatever the server's time zone.
      const tz = process.env.TZ;
      process.env.TZ = 'America/Los_Angeles';
      try {
        recheck = '2030-01-01T00:04:00';
        expect(await fresh.mno.sso.checkSession(stored)).toMatchObject({ valid: true, session: { recheck: '2030-01-01T00:04:00.000Z' } });
      } finally {
        if (tz === undefined) delete process.env.TZ;
        else process.env.TZ = tz;
      }

      valid = false;
      const ended = await fresh.mno.sso.checkSession(stored);
      expect(ended).toEqual({ valid: false, reason: 'ended', initUrl: fresh.mno.sso.initUrl(fresh.tenant, { groupId: 'cld-1' }) });
      expect(calls).toHaveLength(3);

      expect(await fresh.mno.sso.checkSession({ nope: true })).toEqual({ valid: false, reason: 'malformed', initUrl: null });
      expect(await fresh.mno.sso.checkSession({ ...stored, tenant: 'gone' })).toEqual({ valid: false, reason: 'unknown_tenant', initUrl: null });
    } finally {
      await fresh.close();
      await new Promise<void>((resolve) => idpServer.close(() => resolve()));
    }
  });

  it('mno.sso.checkSession takes a timeoutMs: an IdP that never answers is given up after it', async () => {
    const idpServer = createServer(() => {
      // Accepts the request and never answers.
    });
    await new Promise<void>((resolve) => idpServer.listen(0, '127.0.0.1', resolve));
    const fresh = await startHarness({ tenantSso: { idp: `http://127.0.0.1:${(idpServer.address() as AddressInfo).port}` } });
    try {
      const stored = { tenant: fresh.tenant, uid: 'usr-1', groupUid: 'cld-1', session: 'tok', recheck: '2000-01-01T00:00:00Z' };
      const started = Date.now();
      await expect(fresh.mno.sso.checkSession(stored, { timeoutMs: 200 })).rejects.toMatchObject({ name: 'SsoError', reason: 'session_check_failed' });
      // Well before the 10 s default (not a timing assertion on the SDK's speed: the option was used).
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await fresh.close();
      idpServer.closeAllConnections();
      await new Promise<void>((resolve) => idpServer.close(() => resolve()));
    }
  });

  it('an unreachable IdP is a typed SsoError (session_check_failed, 502), not a silent logout', async () => {
    const fresh = await startHarness({ tenantSso: { idp: 'http://127.0.0.1:9' } });
    try {
      const stored = { tenant: fresh.tenant, uid: 'usr-1', groupUid: 'cld-1', session: 'tok', recheck: '2000-01-01T00:00:00Z' };
      await expect(fresh.mno.sso.checkSession(stored)).rejects.toMatchObject({ name: 'SsoError', reason: 'session_check_failed', status: 502 });
    } finally {
      await fresh.close();
    }
  });
});
