import { createHmac } from 'node:crypto';
import type { Tenant } from '../core/types.js';
import { safeEqual } from '../webhooks/auth.js';
import { consumeUrl as consumeUrlOf } from './request.js';

/** At most this many outstanding AuthnRequests per browser and tenant (several tabs). */
const MAX_PENDING = 5;

export interface BindingOptions {
  secret?: string | undefined;
  cookieName: string;
  ttlMs: number;
  secure: 'auto' | boolean;
}

/** An outstanding request: its id, its expiry and the return path it was started with. */
type Entry = [id: string, expiresAtMs: number] | [id: string, expiresAtMs: number, returnTo: string];

function parseCookies(header: string | null): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

/**
 * Binds issued AuthnRequest ids to the browser with a short-lived HMAC-signed cookie, so
 * the consume route accepts an `InResponseTo` only from the browser that started the login
 * (PROTOCOL §7 finding 7). Stateless: any instance holding the key can verify it. The key is
 * `requestBinding.secret` or, by default, derived from the tenant's api key.
 */
export class RequestBinding {
  readonly #options: BindingOptions;
  readonly #keys = new WeakMap<Tenant, Buffer>();

  constructor(options: BindingOptions) {
    this.#options = options;
  }

  /**
   * One cookie per tenant, named `<cookieName>_<tenant>` with the tenant name escaped
   * injectively into a cookie token: letters, digits and `-` stay, every other byte
   * (including `_` itself) becomes `_` and two hex digits. So `acme.eu` (`_2e`) and `acme_eu`
   * (`_5f`) never share a cookie.
   *
   * A Secure cookie (an https ACS) is prefixed `__Host-`: browsers then accept it only from
   * this exact host, Secure, with `Path=/` and no `Domain`. Without it, a page on a sibling
   * subdomain could plant the attacker's own signed binding (cookie tossing) and log the
   * victim's browser into the attacker's account with the attacker's SAML response. Only the
   * prefixed name is read then.
   */
  cookieName(tenant: Tenant): string {
    const url = this.#consumeUrl(tenant);
    return this.#name(tenant, url === null ? this.#options.secure === true : this.#secure(url));
  }

  /** The tenant's ACS URL; null for a hand-built tenant without its `sso` settings. */
  #consumeUrl(tenant: Tenant): string | null {
    return typeof tenant.sso?.idm === 'string' ? consumeUrlOf(tenant) : null;
  }

  /** The binding cookie's value in `cookies`: under the one name the tenant's ACS URL gives. */
  #value(tenant: Tenant, cookies: Map<string, string>): string | undefined {
    const url = this.#consumeUrl(tenant);
    if (url !== null) return cookies.get(this.#name(tenant, this.#secure(url)));
    // A hand-built tenant (RequestBinding used directly) does not say: whichever was issued.
    return cookies.get(this.#name(tenant, true)) ?? cookies.get(this.#name(tenant, false));
  }

  #name(tenant: Tenant, secure: boolean): string {
    const escaped = tenant.name.replace(/[^A-Za-z0-9-]/g, (c) =>
      [...Buffer.from(c, 'utf8')].map((byte) => `_${byte.toString(16).padStart(2, '0')}`).join(''),
    );
    return `${secure ? '__Host-' : ''}${this.#options.cookieName}_${escaped}`;
  }

  #secure(consumeUrl: string): boolean {
    return this.#options.secure === 'auto' ? consumeUrl.startsWith('https:') : this.#options.secure;
  }

  #key(tenant: Tenant): Buffer {
    let key = this.#keys.get(tenant);
    if (!key) {
      key = createHmac('sha256', this.#options.secret ?? tenant.api.key)
        .update(`maestrano-sso-request-binding:${tenant.name}`)
        .digest();
      this.#keys.set(tenant, key);
    }
    return key;
  }

  #mac(tenant: Tenant, payload: string): string {
    return createHmac('sha256', this.#key(tenant)).update(`${tenant.name}|${payload}`).digest('base64url');
  }

  /** The request's cookie, decoded once its signature is checked. */
  #decode(tenant: Tenant, cookieHeader: string | null): { state: 'absent' } | { state: 'invalid' } | { state: 'valid'; decoded: unknown[] } {
    const value = this.#value(tenant, parseCookies(cookieHeader));
    if (!value) return { state: 'absent' };
    const dot = value.indexOf('.');
    if (dot < 0) return { state: 'invalid' };
    const payload = value.slice(0, dot);
    if (!safeEqual(value.slice(dot + 1), this.#mac(tenant, payload))) return { state: 'invalid' };
    let decoded: unknown;
    try {
      decoded = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return { state: 'invalid' };
    }
    return Array.isArray(decoded) ? { state: 'valid', decoded } : { state: 'invalid' };
  }

  /** The live entries of the request's cookie (an invalid or forged cookie reads as empty). */
  #read(tenant: Tenant, cookieHeader: string | null, nowMs: number): Entry[] {
    const cookie = this.#decode(tenant, cookieHeader);
    if (cookie.state !== 'valid') return [];
    const { decoded } = cookie;
    // `[id, expiresAtMs]` entries, and `[id, returnTo]` next to them for the return paths.
    const paths = new Map<string, string>();
    for (const e of decoded) {
      if (Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && typeof e[1] === 'string') paths.set(e[0], e[1]);
    }
    const entries: Entry[] = [];
    for (const e of decoded) {
      if (!Array.isArray(e) || typeof e[0] !== 'string' || typeof e[1] !== 'number' || !(e[1] > nowMs)) continue;
      const returnTo = e.length === 3 && typeof e[2] === 'string' ? e[2] : e.length === 2 ? paths.get(e[0]) : undefined;
      if (e.length === 2 || returnTo !== undefined) entries.push(returnTo === undefined ? [e[0], e[1]] : [e[0], e[1], returnTo]);
    }
    return entries;
  }

  #setCookie(tenant: Tenant, entries: Entry[], consumeUrl: string): string {
    const secure = this.#secure(consumeUrl);
    const name = this.#name(tenant, secure);
    const flags = `Path=/; HttpOnly${secure ? '; Secure; SameSite=None' : ''}`;
    if (entries.length === 0) return `${name}=; Max-Age=0; ${flags}`;
    // Each entry stays a two-element `[id, expiresAtMs]`, the form every version reads (an
    // instance still on an earlier one, mid-deploy or after a rollback, drops any other shape and
    // with it the login); a return path is a separate `[id, returnTo]` such a version skips.
    const payload = Buffer.from(
      JSON.stringify([...entries.map((e) => [e[0], e[1]]), ...entries.flatMap((e) => (e.length === 3 ? [[e[0], e[2]]] : []))]),
      'utf8',
    ).toString('base64url');
    const maxAge = Math.ceil(this.#options.ttlMs / 1000);
    return `${name}=${payload}.${this.#mac(tenant, payload)}; Max-Age=${maxAge}; ${flags}`;
  }

  /**
   * `Set-Cookie` value adding `requestId` (keeping the most recent outstanding ids), with the
   * return path the login started with: an IdP that does not post `RelayState` back still
   * lands the user there.
   */
  issue(tenant: Tenant, requestId: string, cookieHeader: string | null, consumeUrl: string, nowMs: number, returnTo: string | null = null): string {
    const entries = this.#read(tenant, cookieHeader, nowMs).filter((e) => e[0] !== requestId);
    entries.push(returnTo === null ? [requestId, nowMs + this.#options.ttlMs] : [requestId, nowMs + this.#options.ttlMs, returnTo]);
    return this.#setCookie(tenant, entries.slice(-MAX_PENDING), consumeUrl);
  }

  /** True when this browser holds a live, authentic binding for `requestId`. */
  has(tenant: Tenant, requestId: string, cookieHeader: string | null, nowMs: number): boolean {
    return this.find(tenant, requestId, cookieHeader, nowMs) !== null;
  }

  /**
   * Whether this browser holds a live, authentic binding for `requestId`: null when not, else
   * the return path its login started with (null when none).
   */
  find(tenant: Tenant, requestId: string, cookieHeader: string | null, nowMs: number): { returnTo: string | null } | null {
    const entry = this.#read(tenant, cookieHeader, nowMs).find((e) => e[0] === requestId);
    return entry ? { returnTo: entry[2] ?? null } : null;
  }

  /**
   * Why `find` found no binding for `requestId`, for the log: a missing cookie, one this key did
   * not sign, an expired login, or a cookie that holds other logins only. Names no value.
   */
  explain(tenant: Tenant, requestId: string, cookieHeader: string | null, nowMs: number): string {
    const name = this.cookieName(tenant);
    const cookie = this.#decode(tenant, cookieHeader);
    if (cookie.state === 'absent') {
      return `the post carried no ${name} cookie: the browser did not send the one the SSO start set (the start and the ACS must be the same site and scheme; a login started in another browser, or a cookie dropped by the browser or a proxy)`;
    }
    if (cookie.state === 'invalid') {
      return `the ${name} cookie is not one this app signed (instances with different sso.requestBinding.secret values, or a forged cookie)`;
    }
    const mine = cookie.decoded.find((e) => Array.isArray(e) && e[0] === requestId && typeof e[1] === 'number');
    if (mine !== undefined && !((mine as [string, number])[1] > nowMs)) {
      return `the login started more than ${Math.round(this.#options.ttlMs / 60_000)} min ago and its binding expired: start it again`;
    }
    return `the ${name} cookie holds other logins of this browser, not this one (a response for a login started elsewhere, or one already used)`;
  }

  /** `Set-Cookie` value removing a used `requestId`. */
  consume(tenant: Tenant, requestId: string, cookieHeader: string | null, consumeUrl: string, nowMs: number): string {
    const entries = this.#read(tenant, cookieHeader, nowMs).filter((e) => e[0] !== requestId);
    return this.#setCookie(tenant, entries, consumeUrl);
  }
}
