import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { deflateRawSync } from 'node:zlib';
import { SAML, ValidateInResponseTo } from '@node-saml/node-saml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../src/index.js';

const run = promisify(execFile);
const APP = 'http://localhost:3000';

function samlFor(sb: Sandbox, index: number, certIndex = index): SAML {
  const m = sb.credentials.marketplaces[index];
  const c = sb.credentials.marketplaces[certIndex];
  if (!m || !c) throw new Error('marketplace missing');
  return new SAML({
    callbackUrl: `${APP}/maestrano/auth/saml/consume/${m.name}`,
    entryPoint: `${sb.url}/api/v1/auth/saml`,
    issuer: m.apiId,
    idpCert: c.certificate,
    audience: `${APP}/`,
    wantAuthnResponseSigned: false,
    wantAssertionsSigned: true,
    validateInResponseTo: ValidateInResponseTo.always,
    identifierFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
  });
}

describe('IdP and SAML responses (PROTOCOL §3)', () => {
  let sb: Sandbox;
  let groupA: string;
  let groupA2: string;
  let groupB: string;
  let userId: string;
  let soloUser: string;
  let workdir: string;

  beforeAll(async () => {
    sb = await startSandbox({ port: 0, appUrl: APP, marketplaces: ['alpha', 'beta'] });
    const a = await sb.admin.createGroup({ marketplace: 'alpha', name: 'Doe Corp', orgUid: 'org-48', freeTrialEndAt: '2027-01-31T00:00:00Z', hasCreditCard: true, currency: 'USD', country: 'US', city: 'Boston', timezone: 'America/New_York', email: 'boss@doecorp.com' });
    const a2 = await sb.admin.createGroup({ marketplace: 'alpha', name: 'Second Co' });
    const b = await sb.admin.createGroup({ marketplace: 'beta', name: 'Beta Co' });
    groupA = a.id;
    groupA2 = a2.id;
    groupB = b.id;
    const user = await sb.admin.createUser({
      name: 'John',
      surname: 'Doe',
      email: 'j.doe@doecorp.com',
      companyName: 'DoeCorp',
      country: 'AU',
      memberships: [
        { groupId: groupA, role: 'Admin' },
        { groupId: groupA2, role: 'Member' },
        { groupId: groupB, role: 'Super Admin' },
      ],
    });
    userId = user.id;
    soloUser = (await sb.admin.createUser({ memberships: [{ groupId: groupA, role: 'Power User' }] })).id;
    workdir = await mkdtemp(join(tmpdir(), 'sandbox-saml-'));
  });
  afterAll(async () => {
    await sb.stop();
    await rm(workdir, { recursive: true, force: true });
  });

  it('programmatic SP-initiated login - response validates with node-saml against the published certificate and carries every attribute', async () => {
    const saml = samlFor(sb, 0);
    const redirect = await saml.getAuthorizeUrlAsync('relay-123', undefined, {});
    const idpUrl = new URL(redirect);
    expect(`${idpUrl.origin}${idpUrl.pathname}`).toBe(`${sb.url}/api/v1/auth/saml`);
    idpUrl.searchParams.set('group_id', groupA);
    const login = await sb.admin.ssoLogin({ authnRequestUrl: idpUrl.toString(), userId });
    expect(login.acsUrl).toBe(`${APP}/maestrano/auth/saml/consume/alpha`);
    expect(login.relayState).toBe('relay-123');
    expect(login.groupId).toBe(groupA);
    const { profile } = await saml.validatePostResponseAsync({ SAMLResponse: login.samlResponse });
    if (!profile) throw new Error('no profile');
    expect(profile.nameID).toBe(userId);
    expect(profile.nameIDFormat).toBe('urn:oasis:names:tc:SAML:2.0:nameid-format:persistent');
    const attrs = profile.attributes as Record<string, string>;
    expect(attrs).toMatchObject({
      mno_uid: userId,
      uid: userId,
      virtual_uid: `${userId}.${groupA}`,
      email: 'j.doe@doecorp.com',
      virtual_email: `${userId}.${groupA}@mno-api-sandbox-mail.maestrano.com`,
      name: 'John',
      surname: 'Doe',
      country: 'AU',
      company_name: 'DoeCorp',
      mno_session: login.sessionToken,
      group_uid: groupA,
      group_name: 'Doe Corp',
      group_role: 'Admin',
      group_end_free_trial: '2027-01-31T00:00:00.000Z',
      group_has_credit_card: 'true',
      group_email: 'boss@doecorp.com',
      group_currency: 'USD',
      group_timezone: 'America/New_York',
      group_country: 'US',
      group_city: 'Boston',
      group_org_uid: 'org-48',
      app_owner: 'true',
      organizations: '{}',
    });
    expect(Object.keys(attrs)).toContain('group_reseller_id');
    expect(Date.parse(attrs.mno_session_recheck ?? '')).toBeGreaterThan(Date.now());
  });

  it('response structure - Destination, Recipient, InResponseTo, Audience and the time window of PROTOCOL §3.3', async () => {
    const saml = samlFor(sb, 0);
    const redirect = await saml.getAuthorizeUrlAsync('', undefined, {});
    const login = await sb.admin.ssoLogin({ authnRequestUrl: redirect, userId: soloUser });
    const xml = login.xml;
    expect(xml).toMatch(/<samlp:Response [^>]*Destination="http:\/\/localhost:3000\/maestrano\/auth\/saml\/consume\/alpha"/);
    expect(xml).toMatch(/<samlp:Response [^>]*InResponseTo="_/);
    expect(xml).toContain('Recipient="http://localhost:3000/maestrano/auth/saml/consume/alpha"');
    expect(xml).toContain('<saml:Audience>http://localhost:3000/</saml:Audience>');
    expect(xml.match(/<saml:Assertion /g)?.length).toBe(1);
    expect(xml.match(/<ds:Signature[ >]/g)?.length).toBe(1);
    expect(xml).toMatch(/<saml:Assertion [^>]*>.*<saml:Issuer>[^<]+<\/saml:Issuer><ds:Signature/);
    expect(xml).toContain('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
    expect(xml).toContain('http://www.w3.org/2001/10/xml-exc-c14n#');
    const cond = /<saml:Conditions NotBefore="([^"]+)" NotOnOrAfter="([^"]+)"/.exec(xml);
    const scd = /<saml:SubjectConfirmationData InResponseTo="[^"]+" NotOnOrAfter="([^"]+)"/.exec(xml);
    const issue = /<samlp:Response [^>]*IssueInstant="([^"]+)"/.exec(xml);
    if (!cond?.[1] || !cond[2] || !scd?.[1] || !issue?.[1]) throw new Error('missing conditions');
    const t0 = Date.parse(issue[1]);
    expect(Date.parse(cond[1])).toBe(t0 - 5_000);
    expect(Date.parse(cond[2])).toBe(t0 + 3_600_000);
    expect(Date.parse(scd[1])).toBe(t0 + 180_000);
  });

  it('xmlsec1 --verify - the assertion signature verifies with the published certificate and fails with another', async () => {
    const login = await sb.admin.ssoIdpInitiated({ userId, groupId: groupA });
    const xmlFile = join(workdir, 'response.xml');
    const certA = join(workdir, 'alpha.pem');
    const certB = join(workdir, 'beta.pem');
    await writeFile(xmlFile, login.xml);
    await writeFile(certA, sb.credentials.marketplaces[0]?.certificate ?? '');
    await writeFile(certB, sb.credentials.marketplaces[1]?.certificate ?? '');
    const args = (cert: string) => ['--verify', '--pubkey-cert-pem', cert, '--id-attr:ID', 'urn:oasis:names:tc:SAML:2.0:assertion:Assertion', xmlFile];
    const ok = await run('xmlsec1', args(certA));
    expect(`${ok.stdout}${ok.stderr}`).toMatch(/OK/);
    await expect(run('xmlsec1', args(certB))).rejects.toMatchObject({ code: 1 });
  });

  it('per-tenant keys - a response signed for alpha is rejected with the beta certificate', async () => {
    const saml = samlFor(sb, 0, 1);
    const redirect = await saml.getAuthorizeUrlAsync('', undefined, {});
    const login = await sb.admin.ssoLogin({ authnRequestUrl: redirect, userId: soloUser });
    await expect(saml.validatePostResponseAsync({ SAMLResponse: login.samlResponse })).rejects.toThrow(/signature/i);
  });

  it('tampering - changing an attribute breaks the signature', async () => {
    const saml = samlFor(sb, 0);
    const redirect = await saml.getAuthorizeUrlAsync('', undefined, {});
    const login = await sb.admin.ssoLogin({ authnRequestUrl: redirect, userId: soloUser });
    const forged = login.xml.replace('>Power User<', '>Super Admin<');
    expect(forged).not.toBe(login.xml);
    await expect(saml.validatePostResponseAsync({ SAMLResponse: Buffer.from(forged).toString('base64') })).rejects.toThrow();
  });

  it('GET /api/v1/auth/saml - unknown Issuer answers "Wrong APP ID!"', async () => {
    const xml = '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_x" Version="2.0" IssueInstant="2026-01-01T00:00:00Z" AssertionConsumerServiceURL="http://localhost:3000/acs"><saml:Issuer>app-unknown</saml:Issuer></samlp:AuthnRequest>';
    const q = encodeURIComponent(deflateRawSync(Buffer.from(xml)).toString('base64'));
    const res = await fetch(`${sb.url}/api/v1/auth/saml?SAMLRequest=${q}`);
    expect(res.status).toBe(400);
    expect(await res.text()).toBe('Wrong APP ID!');
    const garbage = await fetch(`${sb.url}/api/v1/auth/saml?SAMLRequest=bm90IHhtbA==`);
    expect(garbage.status).toBe(400);
    const apiId = sb.credentials.marketplaces[0]?.apiId ?? '';
    const evil = xml.replace('app-unknown', apiId).replace('http://localhost:3000/acs', 'https://evil.example/acs');
    const foreignAcs = await fetch(`${sb.url}/api/v1/auth/saml?SAMLRequest=${encodeURIComponent(deflateRawSync(Buffer.from(evil)).toString('base64'))}`);
    expect(foreignAcs.status).toBe(400);
    expect(await foreignAcs.text()).toContain('is not on the app host');
  });

  it('browser flow over HTTP - login page, group choice, then an auto-post form to the ACS', async () => {
    const saml = samlFor(sb, 0);
    const redirect = await saml.getAuthorizeUrlAsync('rs', undefined, {});
    const loginPage = await fetch(redirect);
    expect(loginPage.status).toBe(200);
    const page = await loginPage.text();
    expect(page).toContain(`data-user="${userId}"`);
    const idpPath = `${new URL(redirect).pathname}${new URL(redirect).search}`;
    const login = await fetch(`${sb.url}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ user_id: userId, return_to: idpPath }).toString(),
    });
    expect(login.status).toBe(302);
    expect(login.headers.get('location')).toBe(idpPath);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const choose = await fetch(redirect, { headers: { cookie } });
    const choosePage = await choose.text();
    expect(choosePage).toContain(`data-group="${groupA}"`);
    expect(choosePage).toContain(`data-group="${groupA2}"`);
    expect(choosePage).not.toContain(`data-group="${groupB}"`);
    const chosen = await fetch(`${redirect}&group_id=${groupA2}`, { headers: { cookie } });
    const form = await chosen.text();
    expect(form).toContain('action="http://localhost:3000/maestrano/auth/saml/consume/alpha"');
    expect(form).toContain('name="RelayState" value="rs"');
    const value = /name="SAMLResponse" value="([^"]+)"/.exec(form)?.[1];
    if (!value) throw new Error('no SAMLResponse in the form');
    const { profile } = await saml.validatePostResponseAsync({ SAMLResponse: value });
    expect(profile?.attributes).toMatchObject({ group_uid: groupA2, group_role: 'Member' });
    const denied = await sb.admin.createUser({ memberships: [{ groupId: groupB }] });
    const login2 = await fetch(`${sb.url}/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `user_id=${denied.id}&return_to=%2F` });
    const cookie2 = (login2.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const forbidden = await fetch(redirect, { headers: { cookie: cookie2 } });
    expect(forbidden.status).toBe(403);
  });

  it("a launch of a group offers only its members (the group choice that follows lands in it); other requests list everyone", async () => {
    const saml = samlFor(sb, 0);
    const redirect = await saml.getAuthorizeUrlAsync('rs', undefined, {});
    const picker = await (await fetch(`${redirect}&group_id=${groupA2}`)).text();
    expect(picker).toContain('Launching the app for <b>Second Co</b>');
    expect(picker).toContain(`data-user="${userId}"`);
    // soloUser is a member of Doe Corp only: picked, it would land in Doe Corp (PROTOCOL §3.2).
    expect(picker).not.toContain(`data-user="${soloUser}"`);
    const everyone = await (await fetch(redirect)).text();
    expect(everyone).toContain(`data-user="${soloUser}"`);
    // A group of another marketplace is no launch of this one: everyone with access is listed.
    expect(await (await fetch(`${redirect}&group_id=${groupB}`)).text()).toContain(`data-user="${soloUser}"`);
  });

  it('session check and /app_logout - the mno_session is valid until the user logs out', async () => {
    const login = await sb.admin.ssoIdpInitiated({ userId, groupId: groupA });
    const check = async (uid: string, token: string) => {
      const res = await fetch(`${sb.url}/api/v1/auth/saml/${encodeURIComponent(uid)}?session=${encodeURIComponent(token)}`);
      expect(res.status).toBe(200);
      return (await res.json()) as { valid: boolean; recheck: string };
    };
    const first = await check(userId, login.sessionToken);
    expect(first.valid).toBe(true);
    expect(Date.parse(first.recheck)).toBeGreaterThan(Date.now() + 60_000);
    expect((await check(`${userId}.${groupA}`, login.sessionToken)).valid).toBe(true);
    expect((await check(`${userId}.${groupA}@mno-api-sandbox-mail.maestrano.com`, login.sessionToken)).valid).toBe(true);
    expect((await check(soloUser, login.sessionToken)).valid).toBe(false);
    expect((await check(userId, 'bogus')).valid).toBe(false);
    const idpLogin = await fetch(`${sb.url}/login`, { method: 'POST', body: new URLSearchParams({ user_id: userId, return_to: '/' }), redirect: 'manual' });
    const idpCookie = (idpLogin.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    // Another browser (or a page embedding the URL) naming the user ends nothing.
    const forged = await fetch(`${sb.url}/app_logout?user_uid=${userId}`);
    expect(forged.status).toBe(200);
    expect(await forged.text()).toContain('No user to sign out');
    expect((await check(userId, login.sessionToken)).valid).toBe(true);
    const out = await fetch(`${sb.url}/app_logout?user_uid=${userId}`, { headers: { cookie: idpCookie } });
    expect(out.status).toBe(200);
    expect((await check(userId, login.sessionToken)).valid).toBe(false);
  });

  it('POST /login - return_to stays on the sandbox (no open redirect through /\\host, tabs or absolute URLs)', async () => {
    const signIn = async (returnTo: string) =>
      (await fetch(`${sb.url}/login`, { method: 'POST', body: new URLSearchParams({ user_id: userId, return_to: returnTo }), redirect: 'manual' })).headers.get('location');
    for (const evil of ['/\\evil.example/phish', '/\t/evil.example', '//evil.example', 'https://evil.example/', '/\\\\evil.example', 'javascript:alert(1)']) {
      expect(await signIn(evil), evil).toBe('/');
    }
    expect(await signIn('/launch/cld-1?x=1')).toBe('/launch/cld-1?x=1');
  });

  it('GET /launch/:group_id - redirects to the app init URL of the group marketplace with group_id', async () => {
    const res = await fetch(`${sb.url}/launch/${groupB}`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe(`${APP}/maestrano/auth/saml/init/beta?group_id=${groupB}`);
  });

  it('IdP-initiated response - validates without InResponseTo when the SP allows it', async () => {
    const m = sb.credentials.marketplaces[1];
    if (!m) throw new Error('no beta');
    const saml = new SAML({ callbackUrl: `${APP}/maestrano/auth/saml/consume/beta`, issuer: m.apiId, idpCert: m.certificate, audience: `${APP}/`, wantAuthnResponseSigned: false, wantAssertionsSigned: true });
    const login = await sb.admin.ssoIdpInitiated({ userId, groupId: groupB });
    expect(login.xml).not.toContain('InResponseTo');
    const { profile } = await saml.validatePostResponseAsync({ SAMLResponse: login.samlResponse });
    expect(profile?.attributes).toMatchObject({ group_uid: groupB, group_role: 'Super Admin' });
    await expect(sb.admin.ssoIdpInitiated({ userId: soloUser, groupId: groupB })).rejects.toMatchObject({ status: 403 });
  });
});
