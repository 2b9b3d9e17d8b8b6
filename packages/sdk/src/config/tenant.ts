import { createHash, X509Certificate } from 'node:crypto';
import * as z from 'zod';
import type { Logger, Tenant } from '../core/types.js';
import { ConfigError } from '../errors/index.js';
import { CONFIG_PARSE_OPTIONS, configErrorFrom, configIssues, issuePath, strictObject } from './issues.js';
import { trimTrailingSlashes } from '../internal/text.js';
import { MAX_TIMER_MS } from '../internal/sleep.js';

/** One problem of a configuration: where, and what (never a received value). */
export interface ConfigIssue {
  path: string;
  message: string;
}

/** A `ConfigError` listing every issue, one per line, under `Invalid ${what}:`. */
export function configErrorOf(what: string, issues: readonly ConfigIssue[]): ConfigError {
  const lines = issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n');
  return new ConfigError(`Invalid ${what}:\n${lines}`, { issues: [...issues] });
}

/** Requested NameID format (PROTOCOL §1.2 `sso.name_id_format`). */
export const PERSISTENT_NAME_ID = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';

/**
 * The protocol's default route paths (PROTOCOL §1.2), without a tenant. A tenant that does not
 * configure a path serves `<default>/<tenant>`; the router also serves the default itself (see
 * `createRouter`), as maestrano-rails does (PROTOCOL §1.5).
 */
export const DEFAULT_PATHS = {
  initPath: '/maestrano/auth/saml/init',
  consumePath: '/maestrano/auth/saml/consume',
  groupPath: '/maestrano/account/groups/:id',
  groupUserPath: '/maestrano/account/groups/:group_id/users/:id',
  notificationPath: '/maestrano/connec/notifications',
} as const;

const TENANT_NAME = /^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$/;

// The scheme in any case (RFC 3986 §3.1: `HTTPS://` is an https URL); see `lowerScheme`.
const isUrl = (v: string): boolean => /^https?:\/\/[^\s/]+/i.test(v) && URL.canParse(v);
/** `v` with its http(s) scheme lower-cased (the SDK tells https hosts by their `https:` prefix); the rest as written. */
export const lowerScheme = (v: string): string => v.replace(/^https?:/i, (scheme) => scheme.toLowerCase());
/**
 * Whitespace, a control character (C0, DEL, C1) or an invisible format character (zero-width
 * space, bidi override, BOM). `new URL()` silently drops tabs and newlines, and keeps a
 * trailing space as text we append paths to, so such a value would name another URL than the
 * one written (an ACS URL with a newline in it).
 */
const UNSAFE_CHARACTER = /[\s\p{Cc}\p{Cf}]/u;
/**
 * Why a host URL cannot be used, or null. Paths are appended to hosts as text, so a query or
 * fragment would end up in the middle of every URL, and credentials in a host would be
 * printed wherever the URL is. `origin`: the app's own hosts, whose routes the SDK serves from
 * the root (the ACS URL must be the URL the browser posts to). The value is checked as given:
 * whitespace or a control character anywhere in it is refused (the marketplace keys trim
 * surrounding whitespace before this check; see `trimmed`).
 */
export function hostProblem(v: string, origin: boolean): string | null {
  if (typeof v !== 'string' || !isUrl(v.trim())) return 'must be an http(s) URL';
  if (UNSAFE_CHARACTER.test(v)) return 'must not contain whitespace or control characters';
  const u = new URL(v);
  if (u.username !== '' || u.password !== '') return 'must not carry credentials';
  if (u.search !== '' || u.hash !== '' || v.includes('?') || v.includes('#')) return 'must not have a query or fragment';
  if (origin && u.pathname !== '/') return 'must be an origin such as https://app.example.com, without a path (the routes are served from the root)';
  return null;
}
/**
 * A marketplace's host, URL and path values are read with surrounding whitespace removed
 * (`String.prototype.trim`: spaces, tabs, CR/LF, as left by a CRLF file, a YAML block scalar
 * or a secret mounted as a file), then checked: whitespace or a control character left inside
 * is refused with the key's name.
 */
const trimmed = () => z.string().trim();
const hostUrl = (origin: boolean) =>
  trimmed()
    .superRefine((v, ctx) => {
      const problem = hostProblem(v, origin);
      if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
    })
    .transform(lowerScheme);
const url = hostUrl(false);
const appOrigin = hostUrl(true);
/** `sso.idm`: the app's origin, or `""` for "use `app.host`" (what the developer platform sends, PROTOCOL §1.4). */
const idm = trimmed()
  .superRefine((v, ctx) => {
    const problem = v === '' ? null : hostProblem(v, true);
    if (problem !== null) ctx.addIssue({ code: 'custom', message: `${problem} (or empty for app.host)` });
  })
  .transform(lowerScheme);
const path = trimmed().refine((v) => v.startsWith('/') && !UNSAFE_CHARACTER.test(v), { message: 'must be an absolute path' });
const optionalPath = path.nullish();
/**
 * The rule of the Connec! client's `basePath` (`@org/connec-client`, `createConnecClient`):
 * `/`-separated segments of letters, digits and `- . _ ~`, optionally ending with `/`. Applied
 * to `api.base` and `connec.base_path` at config time: a query, a fragment or any other
 * character would otherwise land in the middle of every Account API URL, or make every Connec!
 * call of the tenant fail at first use.
 */
export const BASE_PATH = /^(\/[A-Za-z0-9_\-.~]+)*\/?$/;
const basePath = path.refine((v) => !v.startsWith('/') || UNSAFE_CHARACTER.test(v) || BASE_PATH.test(v), {
  message: 'must be a path of segments made of letters, digits and - . _ ~ (no query, fragment or other character)',
});
/**
 * `app.synchronization_*_path` (PROTOCOL §1.4, §5.4): an absolute path, or a full http(s) URL
 * taken as its path (the routes are served from the app's root). Anything else (empty, null, a
 * relative path, whitespace or a control character inside) means "not configured": the
 * defaults apply. Surrounding whitespace is trimmed, as for every host and path. These keys
 * only matter to apps with a connector, so a value the SDK cannot use never refuses the
 * marketplace (its SSO and webhooks do not depend on them).
 */
const syncPath = z
  .string()
  .nullish()
  .transform((raw) => {
    const v = typeof raw === 'string' ? raw.trim() : raw;
    if (typeof v !== 'string' || UNSAFE_CHARACTER.test(v)) return null;
    if (v.startsWith('/')) return v;
    if (!isUrl(v)) return null;
    const url = new URL(v);
    return `${url.pathname}${url.search}`;
  });
/**
 * `connec.timeout`, in seconds: the Connec! client takes it as whole ms from 1 to 2^31-1, so
 * anything rounding outside that (0.0001 s -> 0 ms, 3e6 s -> 3e9 ms) is refused here rather than
 * on the first Connec! call.
 */
const connecTimeout = z.number().refine(
  (v) => {
    const ms = Math.round(v * 1000);
    return ms >= 1 && ms <= MAX_TIMER_MS;
  },
  { error: `must be a number of seconds from 0.001 to ${MAX_TIMER_MS / 1000} (1 to ${MAX_TIMER_MS} ms once rounded to whole ms)` },
);
const secret = (label: string) =>
  z.string({ error: `${label} is required (a non-empty string)` }).min(1, { error: `${label} must not be empty` });

/**
 * One element of the dev-platform `{marketplaces:[...]}` document (PROTOCOL §1.4), also
 * accepted as an explicit object. Both `webhook`/`webhooks` spellings and both path-key
 * spellings (`groups_path`/`group_path`, …) are accepted.
 */
function marketplaceSchema(strict: boolean) {
  const obj = strict ? strictObject : z.object;
  const webhooks = obj({
    account: obj({
      group_path: optionalPath,
      groups_path: optionalPath,
      group_user_path: optionalPath,
      group_users_path: optionalPath,
    }).optional(),
    connec: obj({
      notification_path: optionalPath,
      notifications_path: optionalPath,
      initialization_path: optionalPath,
      external_ids: z.boolean().nullish(),
      subscriptions: z.record(z.string(), z.boolean()).nullish(),
    }).optional(),
  });
  return obj({
    marketplace: z.string().regex(TENANT_NAME, { error: 'must be a marketplace key (letters, digits, . _ ~ -)' }),
    nid: z.string().nullish(),
    environment: z.string().nullish(),
    app: obj({
      host: appOrigin,
      synchronization_start_path: syncPath,
      synchronization_toggle_path: syncPath,
      synchronization_status_path: syncPath,
    }),
    api: obj({
      // HTTP Basic ends the user-id at its first ':' (RFC 7617 §2): an id holding one could
      // never authenticate, and its credentials would read as another marketplace's.
      id: z
        .string()
        .min(1)
        .refine((v) => !v.includes(':'), { error: 'must not contain ":" (HTTP Basic authentication cannot carry it in a user-id)' }),
      key: secret('api.key'),
      host: url,
      base: basePath.nullish(),
      // Keys of the Ruby/PHP configurations (PROTOCOL §1.2), accepted so that such a file (or a
      // platform document carrying them) loads, and ignored: the SDK always verifies TLS (the
      // Ruby default `false` included), and it names its own version.
      verify_ssl_certs: z.boolean().nullish(),
      version: z.string().nullish(),
      lang: z.string().nullish(),
      lang_version: z.string().nullish(),
    }),
    sso: obj({
      enabled: z.boolean().nullish(),
      slo_enabled: z.boolean().nullish(),
      creation_mode: z.enum(['real', 'virtual']).nullish(),
      idm: idm.nullish(),
      init_path: optionalPath,
      consume_path: optionalPath,
      idp: url.nullish(),
      name_id_format: z.string().nullish(),
      x509_fingerprint: z.string().nullish(),
      x509_certificate: z.string().nullish(),
    }).optional(),
    connec: obj({
      enabled: z.boolean().nullish(),
      host: url.nullish(),
      base_path: basePath.nullish(),
      timeout: connecTimeout.nullish(),
      // Legacy path fragments of the Ruby/PHP tables (PROTOCOL §1.2): no client uses them.
      v2_path: z.string().nullish(),
      reports_path: z.string().nullish(),
    }).optional(),
    webhooks: webhooks.optional(),
    webhook: webhooks.optional(),
  });
}

const strictMarketplace = marketplaceSchema(true);
const looseMarketplace = marketplaceSchema(false);

export type MarketplaceInput = z.input<typeof strictMarketplace>;
type Marketplace = z.output<typeof strictMarketplace>;

/**
 * `{"marketplaces":[...]}`: strict for files and explicit documents. The elements are
 * validated one by one (`collectTenants`), so that each one's problems are all listed.
 */
const strictDocument = strictObject({ marketplaces: z.array(z.unknown()) });
/** The same, ignoring unknown keys: only for what the live developer platform serves. */
const looseDocument = z.object({ marketplaces: z.array(z.unknown()) });

function trimSlash(host: string): string {
  return trimTrailingSlashes(host);
}

/**
 * A route path. Configured: exactly as written, query included (`…?marketplace=<name>`, or a
 * tenant-less path), because that is the URL Maestrano calls and the IdP posts to (PROTOCOL
 * §1.4). Not configured: the protocol default with the tenant as the last segment, so that
 * several tenants' defaults never collide.
 */
function tenantPath(p: string | null | undefined, fallback: string, tenant: string): string {
  return p ?? `${fallback}/${tenant}`;
}

/** The configured connector control paths (PROTOCOL §5.4); none configured: no key (the defaults apply). */
function syncPaths(app: Marketplace['app']): Pick<Tenant['app'], 'synchronization'> {
  const paths: NonNullable<Tenant['app']['synchronization']> = {};
  if (app.synchronization_start_path) paths.startPath = app.synchronization_start_path;
  if (app.synchronization_toggle_path) paths.togglePath = app.synchronization_toggle_path;
  if (app.synchronization_status_path) paths.statusPath = app.synchronization_status_path;
  return Object.keys(paths).length > 0 ? { synchronization: paths } : {};
}

/** Normalises a SHA-1 fingerprint to lower-case colon hex; null when not 20 bytes of hex. */
export function normalizeFingerprint(value: string): string | null {
  const hex = value.replace(/[:\s-]/g, '').toLowerCase();
  if (!/^[0-9a-f]{40}$/.test(hex)) return null;
  return hex.match(/../g)!.join(':');
}

/** SHA-1 fingerprint (lower-case colon hex) of a certificate's DER encoding. */
export function certificateFingerprint(der: Buffer): string {
  return createHash('sha1').update(der).digest('hex').match(/../g)!.join(':');
}

/** A PEM block of `label` around `body` (whitespace removed, re-wrapped at 64 characters). */
function pemBlock(label: string, body: string): string {
  const compact = body.replace(/\s+/g, '');
  return `-----BEGIN ${label}-----\n${compact.match(/.{1,64}/g)?.join('\n') ?? ''}\n-----END ${label}-----`;
}

function parseCertificate(pem: string): string | null {
  try {
    return new X509Certificate(pem).toString().trim();
  } catch {
    return null;
  }
}

/**
 * Normalises a PEM (accepts `\n` and `\r\n` escapes, a bare base64 body, and a block whose
 * body OpenSSL's reader refuses for its whitespace alone: on one line, indented; re-wrapped as
 * ruby-saml's `format_cert` does); null when unparseable.
 */
export function normalizeCertificate(value: string): string | null {
  const text = value.replace(/\\r\\n|\\n|\\r/g, '\n').trim();
  if (!text.includes('-----BEGIN')) return parseCertificate(pemBlock('CERTIFICATE', text));
  const direct = parseCertificate(text);
  if (direct !== null) return direct;
  const block = /-----BEGIN ((?:X509 |TRUSTED )?CERTIFICATE)-----([\s\S]*?)-----END \1-----/.exec(text);
  return block ? parseCertificate(pemBlock(block[1]!, block[2]!)) : null;
}

/**
 * The certificates a tenant's `sso.x509Certificate` pins, each as its own PEM: one, or several
 * during an IdP key rollover (the old and the new one, as `resolve` stores them).
 */
export function pinnedCertificates(bundle: string | null): string[] {
  if (!bundle) return [];
  return bundle.match(CERTIFICATE_BLOCK) ?? [bundle];
}

/**
 * Marketplaces (two or more, SSO enabled) that trust one same IdP signing certificate, by its
 * SHA-1 fingerprint. Their responses cannot be told apart: the IdP fills Audience and Recipient
 * from the AuthnRequest it receives, and nothing in the assertion names the marketplace, so a
 * response one marketplace's IdP signs can be addressed to, and accepted by, another's consume
 * route (a user of one marketplace signing in to the other's companies).
 */
export function sharedIdpCertificates(tenants: readonly Tenant[]): Array<{ fingerprint: string; marketplaces: string[] }> {
  const byFingerprint = new Map<string, string[]>();
  for (const tenant of tenants) {
    if (!tenant.sso.enabled) continue;
    const fingerprints = new Set<string>();
    for (const pem of pinnedCertificates(tenant.sso.x509Certificate)) {
      try {
        fingerprints.add(certificateFingerprint(new X509Certificate(pem).raw));
      } catch {
        // Refused when the tenant was resolved; nothing to compare.
      }
    }
    if (tenant.sso.x509Fingerprint) fingerprints.add(tenant.sso.x509Fingerprint);
    for (const fingerprint of fingerprints) {
      const names = byFingerprint.get(fingerprint) ?? [];
      names.push(tenant.name);
      byFingerprint.set(fingerprint, names);
    }
  }
  return [...byFingerprint]
    .filter(([, names]) => names.length > 1)
    .map(([fingerprint, marketplaces]) => ({ fingerprint, marketplaces }));
}

/** What the SDK logs for a `sharedIdpCertificates` entry. */
export const SHARED_IDP_CERTIFICATE_WARNING =
  "maestrano: marketplaces trust the same IdP certificate; their SAML responses cannot be told apart, so a user of one may sign in through the other's consume route. Ask Maestrano for one IdP certificate per marketplace, or serve these marketplaces from separate deployments";

/** One PEM certificate block, under every label OpenSSL reads as one (`X509 CERTIFICATE`, `TRUSTED CERTIFICATE` too). */
const CERTIFICATE_BLOCK = /-----BEGIN ((?:X509 |TRUSTED )?CERTIFICATE)-----[\s\S]*?-----END \1-----/g;

const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/**
 * Gives a tenant's `api` object a `toJSON()` and a `util.inspect` hook that print it with
 * `key: '[redacted]'`, so that logging or serialising a tenant never shows the secret. Both are
 * non-enumerable: `key` itself stays a plain property (`tenant.api.key`, `{ ...tenant.api }`),
 * and a spread or `structuredClone` copy is a plain object without them.
 */
function redactedWhenPrinted<T extends { key: string }>(api: T): T {
  const redacted = function (this: T) {
    return { ...this, key: '[redacted]' };
  };
  Object.defineProperty(api, 'toJSON', { value: redacted, enumerable: false });
  Object.defineProperty(api, INSPECT, { value: redacted, enumerable: false });
  return api;
}

/**
 * Resolves one validated marketplace. Its certificate problems are added to `issues` (all of
 * them, so that one error lists every bad tenant) and the result is then null. Problems that do
 * not matter to this app (`options.connector` false: its `connec` block) go to `warnings`.
 */
function resolve(m: Marketplace, prefix: string, issues: ConfigIssue[]): Tenant | null {
  const name = m.marketplace;
  const appHost = trimSlash(m.app.host);
  const apiHost = trimSlash(m.api.host);
  const sso = m.sso ?? {};
  // Both spellings may be present (RB `webhook`, dev platform `webhooks`): merged, `webhooks` wins per key.
  const hooks = {
    account: { ...m.webhook?.account, ...m.webhooks?.account },
    connec: { ...m.webhook?.connec, ...m.webhooks?.connec },
  };
  const before = issues.length;
  let certificate: string | null = null;
  /** Each pinned certificate (several during an IdP key rollover: the old and the new one). */
  let pinned: X509Certificate[] = [];
  if (sso.x509_certificate) {
    // Node reads the first PEM block only, so each block is read on its own: an "old + new"
    // bundle (an IdP key rollover, when responses may be signed with either key) pins both,
    // never silently the old one alone. Every label OpenSSL reads as a certificate
    // (`X509 CERTIFICATE`, `TRUSTED CERTIFICATE` too).
    const begins = sso.x509_certificate.match(/-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----/g)?.length ?? 0;
    const blocks = pinnedCertificates(sso.x509_certificate);
    const normalized = (begins > 1 ? blocks : [sso.x509_certificate]).map((b) => normalizeCertificate(b));
    // A block without its end (a truncated paste) is refused, not silently left out.
    const complete = begins <= 1 || blocks.length === begins;
    if (complete && normalized.every((c): c is string => c !== null)) {
      // Stored as one PEM bundle (`pinnedCertificates` splits it), each certificate once.
      const unique = [...new Set(normalized)];
      certificate = unique.join('\n');
      pinned = unique.map((c) => new X509Certificate(c));
    } else {
      issues.push({ path: `${prefix}sso.x509_certificate`, message: begins > 1 ? 'holds a certificate that is not a valid PEM certificate' : 'not a valid PEM certificate' });
    }
  }
  let fingerprint: string | null = null;
  if (sso.x509_fingerprint) {
    fingerprint = normalizeFingerprint(sso.x509_fingerprint);
    if (!fingerprint) issues.push({ path: `${prefix}sso.x509_fingerprint`, message: 'not a SHA-1 fingerprint (40 hex digits)' });
  }
  // Both pinned: they must name the same key (one of the keys of a rollover bundle), or one of
  // them is stale (or pasted from another tenant).
  if (certificate && fingerprint && !pinned.some((c) => certificateFingerprint(c.raw) === fingerprint)) {
    issues.push({ path: `${prefix}sso.x509_fingerprint`, message: 'does not match the configured certificate (sso.x509_certificate)' });
  }
  const enabled = sso.enabled ?? true;
  if (enabled && !sso.x509_certificate && !sso.x509_fingerprint) {
    issues.push({ path: `${prefix}sso.x509_certificate`, message: 'required when SSO is enabled (or sso.x509_fingerprint as a fallback)' });
  }
  const connecHost = trimSlash(m.connec?.host ?? 'https://api-connec.maestrano.com');
  const connecBase = m.connec?.base_path ?? '/api/v2';
  // The Connec! client adds the base path to the host: `…/api/v2` as the host would call
  // `/api/v2/api/v2/…` (the client refuses it, but only at the first Connec! call). Refused for
  // apps without a connector too: `mno.connec(tenant, groupId)` serves them.
  const trimmedBase = trimTrailingSlashes(connecBase);
  const hostPath = trimTrailingSlashes(new URL(connecHost).pathname);
  if ((m.connec?.enabled ?? true) && trimmedBase !== '' && hostPath.endsWith(trimmedBase)) {
    const suggested = trimSlash(`${new URL(connecHost).origin}${hostPath.slice(0, -trimmedBase.length)}`);
    issues.push({ path: `${prefix}connec.host`, message: `must not end with the base path ${trimmedBase}, which is added to it (use ${suggested})` });
  }
  // The account webhooks read the group (and user) from the path's parameters.
  const groupPath = hooks.account?.group_path ?? hooks.account?.groups_path;
  if (groupPath && !hasParam(groupPath, ['id', 'group_id'])) {
    issues.push({ path: `${prefix}webhooks.account.group_path`, message: 'must hold the group id as a :id (or :group_id) segment, as in /maestrano/account/groups/:id' });
  }
  const groupUserPath = hooks.account?.group_user_path ?? hooks.account?.group_users_path;
  if (groupUserPath && !(hasParam(groupUserPath, ['group_id']) && hasParam(groupUserPath, ['id', 'user_id']))) {
    issues.push({
      path: `${prefix}webhooks.account.group_user_path`,
      message: 'must hold the group id as a :group_id segment and the user id as a :id (or :user_id) segment, as in /maestrano/account/groups/:group_id/users/:id',
    });
  }
  if (issues.length > before) return null;
  const base = m.api.base ?? '/api/v1/';
  return {
    name,
    nid: m.nid ?? null,
    environment: m.environment ?? null,
    app: { host: appHost, ...syncPaths(m.app) },
    api: redactedWhenPrinted({ id: m.api.id, key: m.api.key, host: apiHost, base: base.endsWith('/') ? base : `${base}/` }),
    sso: {
      enabled,
      sloEnabled: enabled && (sso.slo_enabled ?? true),
      idm: sso.idm ? trimSlash(sso.idm) : appHost,
      initPath: tenantPath(sso.init_path, DEFAULT_PATHS.initPath, name),
      consumePath: tenantPath(sso.consume_path, DEFAULT_PATHS.consumePath, name),
      idp: trimSlash(sso.idp ?? apiHost),
      nameIdFormat: sso.name_id_format ?? PERSISTENT_NAME_ID,
      creationMode: sso.creation_mode ?? 'real',
      x509Certificate: certificate,
      x509Fingerprint: fingerprint,
    },
    connec: {
      enabled: m.connec?.enabled ?? true,
      host: connecHost,
      basePath: connecBase,
      timeoutMs: Math.round((m.connec?.timeout ?? 60) * 1000),
      externalIds: hooks.connec?.external_ids ?? false,
    },
    webhooks: {
      account: {
        groupPath: tenantPath(hooks.account?.group_path ?? hooks.account?.groups_path, DEFAULT_PATHS.groupPath, name),
        groupUserPath: tenantPath(
          hooks.account?.group_user_path ?? hooks.account?.group_users_path,
          DEFAULT_PATHS.groupUserPath,
          name,
        ),
      },
      connec: {
        notificationPath: tenantPath(
          hooks.connec?.notification_path ?? hooks.connec?.notifications_path,
          DEFAULT_PATHS.notificationPath,
          name,
        ),
        initializationPath: hooks.connec?.initialization_path ?? null,
        ...(hooks.connec?.subscriptions ? { subscriptions: { ...hooks.connec.subscriptions } } : {}),
      },
    },
  };
}

/** Whether a route path has a `:name` segment for one of `names` (query and fragment aside). */
function hasParam(path: string, names: readonly string[]): boolean {
  const pathname = path.split(/[?#]/, 1)[0]!;
  return pathname.split('/').some((segment) => names.some((name) => segment === `:${name}`));
}

/** The configurable route paths of a resolved tenant, with the config key and the HTTP method of each. */
function configuredRoutes(t: Tenant): { key: string; method: string; path: string; basicAuth: boolean }[] {
  const routes = [
    { key: 'sso.init_path', method: 'GET', path: t.sso.initPath, basicAuth: false },
    { key: 'sso.consume_path', method: 'POST', path: t.sso.consumePath, basicAuth: false },
    { key: 'webhooks.account.group_path', method: 'DELETE', path: t.webhooks.account.groupPath, basicAuth: true },
    { key: 'webhooks.account.group_user_path', method: 'DELETE', path: t.webhooks.account.groupUserPath, basicAuth: true },
    { key: 'webhooks.connec.notification_path', method: 'POST', path: t.webhooks.connec.notificationPath, basicAuth: true },
  ];
  const sync = t.app.synchronization;
  if (sync?.startPath) routes.push({ key: 'app.synchronization_start_path', method: 'POST', path: sync.startPath, basicAuth: true });
  if (sync?.statusPath) routes.push({ key: 'app.synchronization_status_path', method: 'GET', path: sync.statusPath, basicAuth: true });
  if (sync?.togglePath) routes.push({ key: 'app.synchronization_toggle_path', method: 'PUT', path: sync.togglePath, basicAuth: true });
  return routes;
}

/** A path's segments as the router matches them: `:tenant` is the tenant's name, other `:x` match any segment (null). */
function routeShape(path: string, tenant: string): (string | null)[] {
  const pathname = path.split(/[?#]/, 1)[0]!;
  return pathname
    .split('/')
    .filter((s) => s.length > 0)
    .map((s) => (s === ':tenant' ? tenant : s.startsWith(':') ? null : s));
}

/** A path's query parameters as the router matches them (`name=value`, sorted); empty without a query. */
function routeQuery(path: string): string[] {
  const target = path.split('#', 1)[0]!;
  const q = target.indexOf('?');
  if (q < 0) return [];
  return [...new URLSearchParams(target.slice(q + 1))].map(([k, v]) => `${k}=${v}`).sort();
}

/**
 * Adds an issue for every configured path of one marketplace that another marketplace serves
 * too where requests cannot be told apart (a block copied from another marketplace, its paths
 * not renamed):
 * - a path ending with another marketplace's name where that one serves a route of the same
 *   shape and method: the router gives requests on a path that names a tenant to that tenant,
 *   so the first one's route could never be reached;
 * - a path with a query (`…?marketplace=<name>`) identical to another marketplace's route of the
 *   same kind (method, shape and query): both would answer 404 `ambiguous_tenant`, the other
 *   marketplace's own requests too. Webhooks on such a path are told apart by their Basic
 *   credentials, so they are refused only when both marketplaces have the same `api.id:api.key`.
 *   The issue goes to the marketplace the query does not name, else to the later one.
 * Tenant-less paths several marketplaces share (no suffix, no query) are not refused here: the
 * router warns about them when it starts.
 */
function checkShadowedPaths(resolved: readonly { tenant: Tenant; at: string }[], issues: ConfigIssue[]): void {
  // Each marketplace's routes are read once and indexed, so that the check costs as much per
  // marketplace however many there are (comparing every route with every marketplace's took
  // seconds with a thousand marketplaces, at start-up and at each refresh of the tenants).
  const routes = resolved.map(({ tenant }) =>
    configuredRoutes(tenant).map((route) => ({ ...route, shape: routeShape(route.path, tenant.name), query: routeQuery(route.path) })),
  );
  /**
   * Each marketplace's routes as served with its name appended (or ending with it), by that name
   * (of every marketplace of that name: a repeated name is an issue of its own, but the paths of
   * each are still checked, as the comparison with every marketplace did).
   */
  const suffixed = new Map<string, { method: string; shape: (string | null)[] }[]>();
  resolved.forEach(({ tenant }, index) => {
    const served = suffixed.get(tenant.name) ?? [];
    for (const { method, shape } of routes[index]!) served.push({ method, shape: shape.at(-1) === tenant.name ? shape : [...shape, tenant.name] });
    suffixed.set(tenant.name, served);
  });
  /**
   * Routes with a query by what makes two of them one route to a request: kind, query, shape,
   * and for webhooks (told apart by their Basic credentials) the credentials.
   */
  const twinKey = (tenant: Tenant, route: (typeof routes)[number][number]) =>
    JSON.stringify([route.key, route.query, route.shape, route.basicAuth ? [tenant.api.id, tenant.api.key] : null]);
  const withQuery = new Map<string, number[]>();
  resolved.forEach(({ tenant }, index) => {
    for (const route of routes[index]!) {
      if (route.query.length === 0) continue;
      const key = twinKey(tenant, route);
      const same = withQuery.get(key);
      if (same) same.push(index);
      else withQuery.set(key, [index]);
    }
  });
  const same = (a: (string | null)[], b: (string | null)[]) =>
    a.length === b.length && a.every((s, i) => s === null || b[i] === null || s === b[i]);
  const names = (query: string[], name: string) => query.some((q) => q.slice(q.indexOf('=') + 1) === name);
  resolved.forEach(({ tenant, at }, index) => {
    for (const route of routes[index]!) {
      const { shape, query } = route;
      const last = shape.at(-1);
      if (last === tenant.name) continue;
      if (typeof last === 'string') {
        const owner = suffixed.get(last)?.find((r) => r.method === route.method && same(r.shape, shape));
        if (owner) {
          issues.push({
            path: `${at}.${route.key}`,
            message: `${route.path} ends with the name of marketplace ${JSON.stringify(last)}, which serves that path: requests on it would go to ${JSON.stringify(last)} (a block copied from it?)`,
          });
          continue;
        }
      }
      if (query.length === 0) continue;
      // Another marketplace serving exactly this route, where requests cannot tell the two apart.
      const twinIndex = (withQuery.get(twinKey(tenant, route)) ?? []).find((i) => {
        if (i === index) return false;
        const other = resolved[i]!.tenant;
        // The copy is the one the query does not name; when it names neither (or both), the later one.
        const namesMine = names(query, tenant.name);
        const namesTheirs = names(query, other.name);
        return namesMine === namesTheirs ? i < index : namesTheirs;
      });
      if (twinIndex !== undefined) {
        const twin = resolved[twinIndex]!;
        issues.push({
          path: `${at}.${route.key}`,
          message: `${route.path} is also the ${route.key} of marketplace ${JSON.stringify(twin.tenant.name)}: requests on it could not be told apart, and both marketplaces would answer them 404 ambiguous_tenant (a block copied from it? name this marketplace in the path, as in ?marketplace=${tenant.name})`,
        });
      }
    }
  });
}

/** Adds an issue for every repeated marketplace name (each repeat, naming where it first appears). */
function checkUnique(elements: readonly unknown[], prefix: string, issues: ConfigIssue[]): void {
  const first = new Map<string, number>();
  elements.forEach((element, i) => {
    const name = typeof element === 'object' && element !== null ? (element as { marketplace?: unknown }).marketplace : undefined;
    // Only well-formed names are compared (and printed); a malformed one already has its issue.
    if (typeof name !== 'string' || !TENANT_NAME.test(name)) return;
    const at = first.get(name);
    if (at === undefined) first.set(name, i);
    else issues.push({ path: `${prefix}[${i}].marketplace`, message: `duplicate marketplace ${JSON.stringify(name)} (also ${prefix}[${at}])` });
  });
}

/**
 * Validates and resolves marketplace objects (each on its own, so that every element's schema
 * problems, certificate problems and duplicate names are all reported together). Never throws:
 * the problems are added to `issues`, and `unknownKeys` (when `loose`) receives the paths of the
 * unknown keys that were ignored.
 */
function collectTenants(
  elements: readonly unknown[],
  prefix: string,
  issues: ConfigIssue[],
  loose?: { unknownKeys: string[] },
): Tenant[] {
  const tenants: Tenant[] = [];
  const resolved: { tenant: Tenant; at: string }[] = [];
  elements.forEach((element, i) => {
    const at = `${prefix}[${i}]`;
    // A resolved `Tenant` would otherwise get a list of unknown keys (`name`, `webhooks.account.groupPath`, …).
    if (isResolvedTenant(element)) {
      issues.push({ path: at, message: RESOLVED_TENANT_MESSAGE });
      return;
    }
    let parsed = strictMarketplace.safeParse(element, CONFIG_PARSE_OPTIONS);
    if (!parsed.success && loose) {
      loose.unknownKeys.push(...unknownKeyPaths(parsed.error, at));
      parsed = looseMarketplace.safeParse(element, CONFIG_PARSE_OPTIONS);
    }
    if (!parsed.success) {
      issues.push(...configIssues(parsed.error, at));
      return;
    }
    const tenant = resolve(parsed.data, `${at}.`, issues);
    if (tenant) {
      tenants.push(tenant);
      resolved.push({ tenant, at });
    }
  });
  checkUnique(elements, prefix, issues);
  checkShadowedPaths(resolved, issues);
  return tenants;
}

/**
 * Whether `value` is a `Tenant` as the SDK resolves it (what `parseMarketplacesDocument`,
 * `resolveTenants` and a registry's `list()` return) rather than a marketplace object: a `name`
 * instead of `marketplace`, and the resolved camelCase sections (`sso.consumePath`,
 * `webhooks.account.groupPath`, `connec.basePath`).
 */
export function isResolvedTenant(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const v = value as { marketplace?: unknown; name?: unknown; sso?: unknown; webhooks?: unknown; connec?: unknown };
  if (v.marketplace !== undefined || typeof v.name !== 'string') return false;
  const has = (section: unknown, key: string) => typeof section === 'object' && section !== null && key in section;
  const account = typeof v.webhooks === 'object' && v.webhooks !== null ? (v.webhooks as { account?: unknown }).account : undefined;
  return has(v.sso, 'consumePath') || has(account, 'groupPath') || has(v.connec, 'basePath');
}

/** The issue of a resolved `Tenant` passed where a marketplace object is expected. */
export const RESOLVED_TENANT_MESSAGE =
  'is an already-resolved Tenant (as returned by parseMarketplacesDocument, resolveTenants or a registry), not a marketplace object: pass tenants: staticTenants(list) (or the registry itself) instead, or the { marketplace, app, api, sso } objects';

function unknownKeyPaths(error: z.ZodError, prefix: string): string[] {
  return error.issues
    .filter((issue) => issue.code === 'unrecognized_keys')
    .flatMap((issue) => issue.keys.map((key) => issuePath(prefix, [...issue.path, key])));
}

/**
 * The tenants of explicit marketplace objects, or the issues that make them unusable (every one
 * of them, with paths under `prefix`). For callers that merge these issues with their own.
 */
export function tenantsOrIssues(input: readonly unknown[], prefix = 'tenants'): { tenants: Tenant[]; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const tenants = collectTenants(input, prefix, issues);
  return { tenants, issues };
}

/**
 * Validates explicit tenant objects (strict: unknown keys are refused so typos fail) and
 * resolves them into `Tenant`s with defaults applied (default paths end in the tenant name;
 * configured paths are kept as written).
 */
export function resolveTenants(input: readonly unknown[], prefix = 'tenants'): Tenant[] {
  if (!Array.isArray(input)) {
    const parsed = z.array(z.unknown()).safeParse(input, CONFIG_PARSE_OPTIONS);
    if (!parsed.success) throw configErrorFrom(parsed.error, prefix, 'tenant configuration');
  }
  const { tenants, issues } = tenantsOrIssues(input, prefix);
  if (issues.length > 0) throw configErrorOf('tenant configuration', issues);
  return tenants;
}

export interface MarketplacesDocumentOptions {
  /**
   * `false` (default): an unknown key is a `ConfigError` naming it, like a misspelt one.
   * `true`: unknown keys are ignored and, when `logger` is given, listed (keys only, never
   * values) in one warning. `tenantsFromDevPlatform` uses it for what the platform serves, so
   * a field the platform adds later does not take every app down.
   */
  allowUnknownKeys?: boolean;
  logger?: Logger;
}

/**
 * Parses a dev-platform `{marketplaces:[...]}` document (a file's or an explicit one).
 * Validation is strict: an unknown (e.g. misspelt) key, a missing or an invalid key fails
 * with a `ConfigError` naming each one with its path, unless `allowUnknownKeys`.
 */
export function parseMarketplacesDocument(input: unknown, source: string, options: MarketplacesDocumentOptions = {}): Tenant[] {
  if (typeof input === 'object' && input !== null && 'error' in input) {
    // The developer platform's refusal (`{"error":"Could not authenticate"}`), fetched live or
    // saved to a file: its text says why, and it holds no secret. Printable ASCII, capped.
    const said = (input as { error: unknown }).error;
    const text = typeof said === 'string' ? said.replace(/[^\x20-\x7e]/g, '?').slice(0, 200) : null;
    throw new ConfigError(
      `${source} holds the developer platform's error answer${text ? ` ("${text}")` : ''}, not a marketplaces document: fetch it again with the environment's API key and secret`,
    );
  }
  const what = `marketplaces document from ${source}`;
  const issues: ConfigIssue[] = [];
  const loose = options.allowUnknownKeys ? { unknownKeys: [] as string[] } : undefined;
  let parsed = strictDocument.safeParse(input, CONFIG_PARSE_OPTIONS);
  if (!parsed.success && loose) {
    loose.unknownKeys.push(...unknownKeyPaths(parsed.error, ''));
    parsed = looseDocument.safeParse(input, CONFIG_PARSE_OPTIONS);
  }
  if (!parsed.success) issues.push(...configIssues(parsed.error, ''));
  // The elements are checked even when the document itself has a problem (an unknown top-level
  // key), so that one error lists everything.
  const elements = typeof input === 'object' && input !== null ? (input as { marketplaces?: unknown }).marketplaces : undefined;
  const tenants = Array.isArray(elements) ? collectTenants(elements, 'marketplaces', issues, loose) : [];
  if (issues.length > 0) throw configErrorOf(what, issues);
  if (loose && loose.unknownKeys.length > 0) {
    options.logger?.warn('maestrano: ignoring unknown keys in the marketplaces document', { source, paths: loose.unknownKeys });
  }
  return tenants;
}
