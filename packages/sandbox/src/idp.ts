import type { SsoLoginResult } from './admin-client.js';
import { decodeComponent, html, json, MALFORMED_PATH_MESSAGE, parseCookies, redirect, type SandboxRequest, type SandboxResponse, text } from './http.js';
import { type Platform, PlatformError } from './platform.js';
import { autoPostForm, buildSamlResponse, decodeAuthnRequest, SamlRequestError } from './saml.js';
import type { Group, Marketplace, Membership, User } from './types.js';
import { escapeHtml, newSecret } from './util.js';

const IDP_COOKIE = 'mno_sandbox_idp';

/** What a login issues: the same shape the admin API returns to `SandboxAdmin.ssoLogin`. */
export type IssuedResponse = SsoLoginResult;

export type GroupChoice = { kind: 'group'; group: Group; membership: Membership } | { kind: 'choose'; groups: Group[] } | { kind: 'denied' };

/** Group choice of PROTOCOL §3.2. */
function chooseGroup(platform: Platform, marketplace: Marketplace, userId: string, groupId: string | null): GroupChoice {
  const options: Array<{ group: Group; membership: Membership }> = [];
  for (const m of platform.membershipsOf(userId)) {
    const g = platform.store.groups.get(m.groupId);
    if (g && g.marketplace === marketplace.name && g.status === 'running') options.push({ group: g, membership: m });
  }
  if (options.length === 0) return { kind: 'denied' };
  if (options.length === 1 && options[0]) return { kind: 'group', ...options[0] };
  const chosen = groupId ? options.find((o) => o.group.id === groupId) : undefined;
  if (chosen) return { kind: 'group', ...chosen };
  return { kind: 'choose', groups: options.map((o) => o.group) };
}

function issueResponse(
  platform: Platform,
  marketplace: Marketplace,
  acsUrl: string,
  inResponseTo: string | null,
  user: User,
  group: Group,
  membership: Membership,
  relayState: string | null,
): IssuedResponse {
  const session = platform.createSession(user.id);
  const { xml, assertionId } = buildSamlResponse({ marketplace, idpUrl: platform.url, acsUrl, inResponseTo, user, group, membership, session });
  return {
    samlResponse: Buffer.from(xml, 'utf8').toString('base64'),
    xml,
    acsUrl,
    relayState,
    userId: user.id,
    groupId: group.id,
    sessionToken: session.token,
    assertionId,
  };
}

function defaultAcsUrl(platform: Platform, marketplace: Marketplace): string {
  return `${platform.options.appUrl.replace(/\/$/, '')}${platform.appPaths(marketplace.name).consumePath}`;
}

/**
 * The ACS the response goes to: the request's AssertionConsumerServiceURL when it is on the
 * app's origin (assertions are never posted to another host), else the preset consume URL.
 */
function resolveAcsUrl(platform: Platform, marketplace: Marketplace, requested: string | null): string {
  if (requested === null) return defaultAcsUrl(platform, marketplace);
  let url: URL;
  try {
    url = new URL(requested);
  } catch {
    throw new SamlRequestError(`AssertionConsumerServiceURL is not a URL: ${requested}`);
  }
  if (url.origin !== new URL(platform.options.appUrl).origin) {
    throw new SamlRequestError(`AssertionConsumerServiceURL ${requested} is not on the app host ${platform.options.appUrl}`);
  }
  return requested;
}

export interface ProgrammaticLoginInput {
  /** The IdP redirect URL the app produced, or just its `SAMLRequest` value. */
  authnRequestUrl?: string;
  samlRequest?: string;
  relayState?: string | null;
  userId: string;
  groupId?: string;
}

/** SP-initiated login without a browser: what the auto-post form would send. */
export function programmaticLogin(platform: Platform, input: ProgrammaticLoginInput): IssuedResponse {
  let samlRequest = input.samlRequest ?? null;
  let relayState = input.relayState ?? null;
  let groupId = input.groupId ?? null;
  if (input.authnRequestUrl) {
    if (!URL.canParse(input.authnRequestUrl, platform.url)) throw new PlatformError(400, 'authnRequestUrl', `authnRequestUrl is not a URL: ${input.authnRequestUrl}`);
    const u = new URL(input.authnRequestUrl, platform.url);
    samlRequest = u.searchParams.get('SAMLRequest');
    relayState ??= u.searchParams.get('RelayState');
    groupId ??= u.searchParams.get('group_id');
  }
  if (!samlRequest) throw new PlatformError(400, 'SAMLRequest', 'authnRequestUrl with a SAMLRequest, or samlRequest, is required');
  let info: ReturnType<typeof decodeAuthnRequest>;
  try {
    info = decodeAuthnRequest(samlRequest);
  } catch (e) {
    throw new PlatformError(400, 'SAMLRequest', e instanceof Error ? e.message : 'Invalid SAMLRequest');
  }
  const marketplace = platform.marketplaceByApiId(info.issuer);
  if (!marketplace) throw new PlatformError(400, 'SAMLRequest', 'Wrong APP ID!');
  const user = platform.store.users.get(input.userId);
  if (!user) throw new PlatformError(404, 'userId', `Unknown user ${input.userId}`);
  const choice = chooseGroup(platform, marketplace, user.id, groupId);
  if (choice.kind === 'denied') throw new PlatformError(403, 'userId', 'Access Denied');
  if (choice.kind === 'choose') throw new PlatformError(400, 'groupId', `User ${user.id} has several groups: pass groupId (${choice.groups.map((g) => g.id).join(', ')})`);
  let acsUrl: string;
  try {
    acsUrl = resolveAcsUrl(platform, marketplace, info.acsUrl);
  } catch (e) {
    throw new PlatformError(400, 'SAMLRequest', e instanceof Error ? e.message : 'Invalid ACS URL');
  }
  return issueResponse(platform, marketplace, acsUrl, info.id, user, choice.group, choice.membership, relayState);
}

/** IdP-initiated (unsolicited) response for a user and group. */
export function idpInitiatedLogin(platform: Platform, input: { userId: string; groupId: string; relayState?: string | null }): IssuedResponse {
  const group = platform.requireGroup(input.groupId);
  const marketplace = platform.store.marketplaces.get(group.marketplace);
  if (!marketplace) throw new PlatformError(500, 'marketplace', 'Group without marketplace');
  const user = platform.store.users.get(input.userId);
  if (!user) throw new PlatformError(404, 'userId', `Unknown user ${input.userId}`);
  const membership = platform.store.memberships.get(`${group.id}:${user.id}`);
  if (!membership || group.status !== 'running') throw new PlatformError(403, 'userId', 'Access Denied');
  return issueResponse(platform, marketplace, defaultAcsUrl(platform, marketplace), null, user, group, membership, input.relayState ?? null);
}

export function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} · Maestrano sandbox</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem;color:#1d2330}table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccd;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#eef}nav a{margin-right:1rem}button,.button{padding:.3rem .7rem;margin:.1rem}pre{background:#f6f6fa;padding:.5rem;overflow:auto;max-width:70rem}textarea{width:100%;min-height:24rem;font-family:monospace}
.failed{color:#b00}.delivered{color:#070}.pending{color:#a60}form.inline{display:inline}</style></head>
<body><nav><a href="/">Home</a><a href="/ui/users">Users</a><a href="/ui/groups">Groups</a><a href="/ui/deliveries">Delivery log</a></nav><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

/** Maps IdP browser sessions (cookie) to user ids; kept in memory. */
export class IdpSessions {
  readonly #byToken = new Map<string, string>();
  login(userId: string): string {
    const token = newSecret(16);
    this.#byToken.set(token, userId);
    return token;
  }
  user(req: SandboxRequest): string | undefined {
    const token = parseCookies(req.headers)[IDP_COOKIE];
    return token ? this.#byToken.get(token) : undefined;
  }
  logoutUser(userId: string): void {
    for (const [t, u] of this.#byToken) if (u === userId) this.#byToken.delete(t);
  }
  /** Ends every browser session. */
  clear(): void {
    this.#byToken.clear();
  }
}

/**
 * The IdP's user picker. For a launch of a running group of this marketplace (`group_id`), only
 * that group's members are offered: the group choice that follows (PROTOCOL §3.2: a user with
 * exactly one accessible group gets that one, whatever `group_id` says) then always lands in the
 * launched group. Any other request lists every user with access to the app.
 */
function loginPage(platform: Platform, marketplace: Marketplace, returnTo: string, groupId: string | null): string {
  const named = groupId ? platform.store.groups.get(groupId) : undefined;
  const launched = named?.marketplace === marketplace.name && named.status === 'running' ? named : undefined;
  const rows: string[] = [];
  for (const user of platform.store.users.values()) {
    const groups = platform
      .membershipsOf(user.id)
      .map((m) => ({ m, g: platform.store.groups.get(m.groupId) }))
      .filter((x) => x.g?.marketplace === marketplace.name && x.g.status === 'running' && (!launched || x.g.id === launched.id));
    if (groups.length === 0) continue;
    rows.push(
      `<tr><td>${escapeHtml(user.name)} ${escapeHtml(user.surname)}</td><td>${escapeHtml(user.email)}</td><td>${groups.map((x) => `${escapeHtml(x.g?.name)} (${escapeHtml(x.m.role)})`).join('<br>')}</td>` +
        `<td><form method="post" action="/login" class="inline"><input type="hidden" name="user_id" value="${escapeHtml(user.id)}"><input type="hidden" name="return_to" value="${escapeHtml(returnTo)}">` +
        `<button type="submit" data-user="${escapeHtml(user.id)}">Sign in as ${escapeHtml(user.id)}</button></form></td></tr>`,
    );
    if (rows.length >= 200) break;
  }
  const intro = launched
    ? `<p id="launched-group">Launching the app for <b>${escapeHtml(launched.name)}</b> (${escapeHtml(launched.id)}): pick one of its members to sign in with (sandbox: no passwords).</p>`
    : '<p>Pick a user to sign in with (sandbox: no passwords).</p>';
  return page(
    `Sign in to ${marketplace.name}`,
    `${intro}<table><tr><th>User</th><th>Email</th><th>Groups (role)</th><th></th></tr>${rows.join('')}</table>`,
  );
}

/** The IdP endpoints of PROTOCOL §3. */
export function handleIdp(platform: Platform, sessions: IdpSessions, req: SandboxRequest): SandboxResponse | null {
  const path = req.url.pathname.replace(/\/+$/, '');
  const q = req.url.searchParams;
  if (path === '/api/v1/auth/saml' && req.method === 'GET') {
    const samlRequest = q.get('SAMLRequest');
    if (!samlRequest) return text(400, 'Missing SAMLRequest');
    let info: ReturnType<typeof decodeAuthnRequest>;
    try {
      info = decodeAuthnRequest(samlRequest);
    } catch (e) {
      return text(400, e instanceof SamlRequestError ? e.message : 'Invalid SAMLRequest');
    }
    const marketplace = platform.marketplaceByApiId(info.issuer);
    if (!marketplace) return text(400, 'Wrong APP ID!');
    let acsUrl: string;
    try {
      acsUrl = resolveAcsUrl(platform, marketplace, info.acsUrl);
    } catch (e) {
      return text(400, e instanceof Error ? e.message : 'Invalid AssertionConsumerServiceURL');
    }
    const userId = sessions.user(req);
    const user = userId ? platform.store.users.get(userId) : undefined;
    const here = `${req.url.pathname}${req.url.search}`;
    if (!user) return html(200, loginPage(platform, marketplace, here, q.get('group_id') || null));
    const choice = chooseGroup(platform, marketplace, user.id, q.get('group_id'));
    if (choice.kind === 'denied') return html(403, page('Access Denied', `<p>${escapeHtml(user.id)} has no access to this application.</p>`));
    if (choice.kind === 'choose') {
      const links = choice.groups
        .map((g) => {
          const u = new URL(req.url.toString());
          u.searchParams.set('group_id', g.id);
          return `<li><a href="${escapeHtml(`${u.pathname}${u.search}`)}" data-group="${escapeHtml(g.id)}">${escapeHtml(g.name)} (${escapeHtml(g.id)})</a></li>`;
        })
        .join('');
      return html(200, page('Choose a group', `<ul>${links}</ul>`));
    }
    const issued = issueResponse(platform, marketplace, acsUrl, info.id, user, choice.group, choice.membership, q.get('RelayState'));
    return html(200, autoPostForm(issued.acsUrl, issued.samlResponse, issued.relayState));
  }
  const check = /^\/api\/v1\/auth\/saml\/([^/]+)$/.exec(path);
  if (check?.[1] !== undefined && req.method === 'GET') {
    const decoded = decodeComponent(check[1]);
    if (decoded === null) return badPath();
    const uid = decoded.split('.')[0] ?? '';
    const token = q.get('session') ?? '';
    const session = platform.store.sessions.get(token);
    const valid = session?.valid === true && session.userId === uid;
    return json(200, { valid, recheck: new Date(Date.now() + 3 * 60_000).toISOString() });
  }
  if (path === '/login' && req.method === 'POST') {
    const form = new URLSearchParams(req.body);
    const user = platform.store.users.get(form.get('user_id') ?? '');
    if (!user) return text(400, 'Unknown user');
    const returnTo = localPath(form.get('return_to'));
    const token = sessions.login(user.id);
    return redirect(returnTo, { 'set-cookie': `${IDP_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Lax` });
  }
  if (path === '/app_logout') {
    // Only the browser's own IdP user is signed out: any page can send a browser here, so a
    // `user_uid` naming someone else (or no IdP session at all) ends nobody's sessions.
    const uid = (q.get('user_uid') ?? '').split('.')[0] ?? '';
    const current = sessions.user(req);
    const target = current && (uid === '' || uid === current) ? current : null;
    let n = 0;
    if (target) {
      n = platform.invalidateSessions(target);
      sessions.logoutUser(target);
    }
    return html(200, page('Logged out', `<p>${target ? `Signed out ${escapeHtml(target)} (${n} session(s) ended).` : 'No user to sign out.'}</p>`), {
      'set-cookie': `${IDP_COOKIE}=; Path=/; Max-Age=0`,
    });
  }
  if (path === '/app_access_unauthorized') return html(403, page('Access unauthorized', `<p>The application refused the sign-in (${escapeHtml(q.get('err') ?? 'unknown')}).</p>`));
  const launch = /^\/launch\/([^/]+)$/.exec(path);
  if (launch?.[1] !== undefined && req.method === 'GET') {
    const groupId = decodeComponent(launch[1]);
    if (groupId === null) return badPath();
    const group = platform.store.groups.get(groupId);
    if (!group) return html(404, page('Not found', '<p>Unknown group.</p>'));
    const target = new URL(`${platform.options.appUrl.replace(/\/$/, '')}${platform.appPaths(group.marketplace).initPath}`);
    target.searchParams.set('group_id', group.id);
    return redirect(target.toString());
  }
  return null;
}

/** The page answered for a path with a malformed percent-escape (400, as the web UI answers it). */
function badPath(): SandboxResponse {
  return html(400, page('Bad request', `<p class="failed">${MALFORMED_PATH_MESSAGE}.</p>`));
}

/**
 * `return_to` of the sign-in form as a path on this server, else `/`. Browsers read `/\host`
 * and `/<tab>/host` as another origin, so a leading slash alone is not enough.
 */
function localPath(value: string | null): string {
  if (!value?.startsWith('/') || [...value].some((ch) => ch === '\\' || ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) return '/';
  const base = 'http://sandbox.invalid';
  let url: URL;
  try {
    url = new URL(value, base);
  } catch {
    return '/';
  }
  return url.origin === base ? `${url.pathname}${url.search}${url.hash}` : '/';
}
