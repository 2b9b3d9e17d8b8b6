import type { HandlerArgs, ModuleContribution, Runtime, Tenant } from '../core/types.js';
import { SsoError, StorageError } from '../errors/index.js';
import type { ResolvedConfig } from '../config/schema.js';
import { invalidCredentialsResponse, verifyTenantBasicAuth } from '../webhooks/auth.js';
import { identityFrom } from './attributes.js';
import { RequestBinding } from './binding.js';
import { metadataDocument, spMetadataXml } from './metadata.js';
import { isUserLockContended, Provisioner } from './provisioning.js';
import { stepField } from '../internal/failed-step.js';
import { errorMessage } from '../internal/text.js';
import { buildAuthnRequest, consumeUrl, initUrl } from './request.js';
import { boundedDetail, ResponseValidator, ssoError } from './response.js';
import { checkSession, type InflightSessionChecks, logoutUrl, type SessionCheckFailures, type SessionCheckResult } from './session.js';
import type { SsoSession } from './types.js';
import { safeReturnPath } from './return-path.js';

/** `mno.sso`. */
export interface SsoApi {
  /**
   * Re-checks a stored session (PROTOCOL §3.6); see `SessionCheckResult`. `timeoutMs` bounds
   * this caller's wait for Maestrano's answer (default 10 000 ms; a whole number of ms from 1
   * to 2,147,483,647, or `Infinity` for none, else a `PayloadValidationError`), also when it
   * shares a call another request of the session started (for 10 s: one running longer is not
   * joined, a later caller asks Maestrano again); `signal` stops this caller's wait
   * (`SsoError('session_check_failed')`), and one already aborted asks Maestrano nothing.
   */
  checkSession(stored: unknown, options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<SessionCheckResult>;
  /** Where to send the user after ending the app session: `{idp}/app_logout?user_uid=…`. */
  logoutUrl(session: Pick<SsoSession, 'tenant' | 'uid'>): string;
  /**
   * The app's SSO start URL for a tenant (optionally for one group). `returnTo`: a path of the
   * app (`/contacts/42`) to come back to, sent as `return_to`; the init route forwards it to the
   * IdP as `RelayState` when it is a path of `app.host` of at most 80 bytes, and `onLogin` gets it
   * back as `returnTo`.
   */
  initUrl(tenant: string, options?: { groupId?: string; returnTo?: string }): string;
}

export interface SsoModule extends ModuleContribution {
  api: SsoApi;
  /**
   * The answer to an SSO request naming no known marketplace: `sso.onError` with an
   * `unknown_tenant` error and `tenant: null`, or null when no renderer is configured.
   */
  renderUnknownTenant(request: Request): Promise<Response | null>;
}

function tenantOrThrow(runtime: Runtime, name: string): Tenant {
  const tenant = runtime.tenants.get(name);
  if (!tenant) throw ssoError('unknown_tenant', `unknown tenant ${name}`);
  return tenant;
}

function withCookie(response: Response, cookie: string): Response {
  const headers = new Headers(response.headers);
  headers.append('set-cookie', cookie);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

/**
 * A storage failure during a login (the database is down) is `storage_unavailable`, a 503:
 * the login can succeed later, so it is neither the app's fault (500) nor the user's (4xx).
 * The adapter's error stays in `cause` (logged, never sent).
 */
function storageUnavailable(error: unknown): unknown {
  return error instanceof StorageError ? ssoError('storage_unavailable', undefined, error) : error;
}

/**
 * Least time between two purges of expired SAML replay records by one process. Each login
 * stores its assertion id for the assertion's lifetime (minutes); without a purge the records
 * of every login ever made stay in storage.
 */
const REPLAY_PURGE_INTERVAL_MS = 3_600_000;

/** A path's segments as the router matches them (empty ones dropped, `:tenant` is the tenant's name). */
function pathSegments(path: string, tenant: Tenant): string[] {
  return new URL(path.split('?')[0]!, 'http://acs.invalid').pathname
    .split('/')
    .filter((s) => s.length > 0)
    .map((s) => (s === ':tenant' ? tenant.name : s));
}

/**
 * Whether the request arrived at the tenant's ACS path as configured, not at the legacy
 * `<path>/<tenant>` alias of a path that does not name the tenant. A response names only the
 * ACS URL (Recipient, Destination) and its origin (audience): when several marketplaces share
 * that path, the alias is the only thing that picks the tenant, so one response would be
 * accepted (and remembered) once for each of them. Other `:param` segments match anything.
 */
function atConfiguredConsumePath(request: Request, tenant: Tenant): boolean {
  const configured = pathSegments(tenant.sso.consumePath, tenant);
  const actual = new URL(request.url).pathname.split('/').filter((s) => s.length > 0);
  return configured.length === actual.length && configured.every((s, i) => s.startsWith(':') || s === actual[i]);
}

/**
 * Whether a login that failed after its assertion id was remembered gives the id back: yes
 * for failures worth trying again (storage, the app's callbacks: 5xx, or an error the app
 * threw), not for refusals (4xx: the membership removed or the account cancelled while the
 * login ran), which the same response must not get past on a retry. Nor for a login that
 * could not hold its user's lock: a member removal may hold it (a retry of the same response
 * once that removal is done is also refused, as issued before the removal: see `provision`).
 */
function retryable(error: unknown): boolean {
  return !(error instanceof SsoError && error.status < 500) && !isUserLockContended(error);
}

const NOT_FOUND = () => Response.json({ error: 'not_found', message: 'Not found' }, { status: 404 });

/**
 * The SSO module: metadata routes, SP-initiated init, the ACS (validate -> replay ->
 * provision -> `onLogin`) and `mno.sso`.
 */
export function createSsoModule(runtime: Runtime, config: ResolvedConfig): SsoModule {
  const options = config.sso;
  const binding = new RequestBinding(options.requestBinding);
  const validator = new ResponseValidator({ clockSkewMs: options.clockSkewMs, audiences: options.audiences });
  const provisioner = new Provisioner(runtime, config.provisioning, { claimTtlMs: options.provisioningClaimTtlMs });
  const inflightChecks: InflightSessionChecks = new Map();
  const failedChecks: SessionCheckFailures = new Map();
  /** When this process last started a purge of expired replay records (the SDK's clock). */
  let replayPurgedAt = Number.NEGATIVE_INFINITY;
  let replayPurging = false;
  /**
   * Deletes expired replay records, at most once per `REPLAY_PURGE_INTERVAL_MS`, in the
   * background: a login never waits for it, and a failure only means the next one tries again.
   */
  const purgeExpiredReplays = (nowMs: number): void => {
    if (replayPurging || Math.abs(nowMs - replayPurgedAt) < REPLAY_PURGE_INTERVAL_MS) return;
    replayPurging = true;
    replayPurgedAt = nowMs;
    void Promise.resolve()
      .then(() => runtime.storage.replay.purgeExpired())
      .then(
        (removed) => {
          if (removed > 0) runtime.logger.debug('maestrano: expired SAML replay records purged', { removed });
        },
        (error: unknown) => {
          runtime.logger.warn('maestrano: could not purge expired SAML replay records; tried again later', { error: errorMessage(error) });
        },
      )
      .finally(() => {
        replayPurging = false;
      });
  };

  /**
   * Gives back the id of an assertion whose login failed before its session existed, so the
   * browser may post the same (still valid) response again. A failure to do so is logged and
   * changes nothing for the user, who gets the login's own error.
   */
  const releaseAssertion = async (tenant: Tenant, assertionId: string, remembered: Date, failure: unknown): Promise<void> => {
    try {
      await runtime.storage.replay.forget(tenant.name, assertionId, remembered);
    } catch (error) {
      runtime.logger.error('maestrano: could not release the SAML assertion id of a failed login; posting the same response again is refused as a replay', {
        tenant: tenant.name,
        assertionId,
        reason: failure instanceof SsoError ? failure.reason : undefined,
        error: errorMessage(error),
      });
    }
  };

  const render = async (error: unknown, tenant: Tenant, request: Request): Promise<Response> => {
    if (error instanceof SsoError && options.onError) {
      runtime.logger[error.status >= 500 ? 'error' : 'warn']('maestrano: SSO failed', {
        tenant: tenant.name,
        reason: error.reason,
        ...stepField(error),
        cause: error.cause instanceof Error ? boundedDetail(error.cause.message) : undefined,
      });
      return options.onError(error, { tenant, request });
    }
    throw error;
  };

  const metadata = async ({ request, tenant }: HandlerArgs): Promise<Response> => {
    if (!verifyTenantBasicAuth(request, tenant)) return invalidCredentialsResponse();
    return Response.json(metadataDocument(tenant), { headers: { 'cache-control': 'no-store' } });
  };

  const samlMetadata = async ({ tenant }: HandlerArgs): Promise<Response> =>
    new Response(spMetadataXml(tenant), { headers: { 'content-type': 'application/samlmetadata+xml; charset=utf-8' } });

  const ssoInit = async ({ request, tenant }: HandlerArgs): Promise<Response> => {
    if (!tenant.sso.enabled) return NOT_FOUND();
    const now = runtime.clock();
    const built = buildAuthnRequest(tenant, now, new URL(request.url).searchParams);
    // An unusable return path does not stop the login: the user lands where `onLogin` sends
    // a `returnTo` of null.
    if (built.relayStateDropped !== null) {
      runtime.logger.info('maestrano: SSO init: return path not forwarded', { tenant: tenant.name, reason: built.relayStateDropped });
    }
    const cookie = binding.issue(tenant, built.id, request.headers.get('cookie'), consumeUrl(tenant), now.getTime(), built.relayState);
    return new Response(null, {
      status: 302,
      headers: { location: built.location, 'set-cookie': cookie, 'cache-control': 'no-store' },
    });
  };

  const ssoConsume = async ({ request, tenant }: HandlerArgs): Promise<Response> => {
    if (!tenant.sso.enabled) return NOT_FOUND();
    try {
      const type = request.headers.get('content-type') ?? '';
      if (!/^application\/x-www-form-urlencoded\b/i.test(type)) {
        const got = type.trim() === '' ? 'no content-type' : `content-type ${JSON.stringify(type.slice(0, 100))}`;
        throw ssoError('malformed', `${got} (the ACS expects application/x-www-form-urlencoded, the HTTP-POST binding)`);
      }
      if (!atConfiguredConsumePath(request, tenant)) {
        throw ssoError('recipient', `posted to ${new URL(request.url).pathname}, not the ACS ${consumeUrl(tenant)} (a path several marketplaces may share)`);
      }
      const raw = await request.text();
      const form = new URLSearchParams(raw);
      const samlResponse = form.get('SAMLResponse');
      if (!samlResponse) throw ssoError('malformed', 'no SAMLResponse field');

      const now = runtime.clock();
      const assertion = await validator.validate(tenant, samlResponse, now);
      const cookies = request.headers.get('cookie');
      let clearCookie: string | null = null;
      let boundReturnTo: string | null = null;
      if (assertion.inResponseTo !== null) {
        const bound = binding.find(tenant, assertion.inResponseTo, cookies, now.getTime());
        if (!bound) {
          throw ssoError('in_response_to', `InResponseTo is not bound to this browser: ${binding.explain(tenant, assertion.inResponseTo, cookies, now.getTime())}`);
        }
        boundReturnTo = bound.returnTo;
        clearCookie = binding.consume(tenant, assertion.inResponseTo, cookies, consumeUrl(tenant), now.getTime());
      } else if (!options.allowIdpInitiated) {
        throw ssoError('in_response_to', 'IdP-initiated responses are not allowed');
      }
      const identity = identityFrom(tenant, assertion);
      if (!(await runtime.storage.replay.remember(tenant.name, assertion.assertionId, assertion.replayUntil))) {
        throw ssoError('replay', `assertion ${assertion.assertionId} already used`);
      }
      purgeExpiredReplays(now.getTime());
      let loggedIn = false;
      try {
        // `onLogin` runs under the user's lock (see `provision`): a member removal arriving now
        // waits for the session to exist, then ends it.
        const response = await provisioner.provision(tenant, identity, async (result) => {
          runtime.logger.info('maestrano: SSO login', {
            tenant: tenant.name,
            uid: identity.user.key,
            groupId: identity.group.uid,
            ...result.outcome,
          });
          const answer = await config.onLogin({
            user: { ...result.user, profile: identity.user },
            company: result.company,
            group: identity.group,
            membership: identity.membership,
            session: identity.session,
            tenant,
            // The body is read here already: `onLogin` gets a copy it can read again.
            request: new Request(request.url, { method: request.method, headers: request.headers, body: raw, signal: request.signal }),
            relayState: form.get('RelayState'),
            // An IdP that does not post `RelayState` back: the path this browser's login started with.
            returnTo: safeReturnPath(form.get('RelayState'), tenant.app.host) ?? safeReturnPath(boundReturnTo, tenant.app.host),
            outcome: result.outcome,
          });
          loggedIn = true;
          return answer;
        });
        return clearCookie ? withCookie(response, clearCookie) : response;
      } catch (error) {
        const typed = storageUnavailable(error);
        if (!loggedIn && retryable(typed)) await releaseAssertion(tenant, assertion.assertionId, assertion.replayUntil, typed);
        throw typed;
      }
    } catch (error) {
      return render(storageUnavailable(error), tenant, request);
    }
  };

  return {
    routes: { metadata, samlMetadata, ssoInit, ssoConsume },
    renderUnknownTenant: async (request) => {
      if (!options.onError) return null;
      const error = ssoError('unknown_tenant', `unknown marketplace in ${new URL(request.url).pathname}`);
      runtime.logger.warn('maestrano: SSO failed', { tenant: null, reason: error.reason });
      return options.onError(error, { tenant: null, request });
    },
    api: {
      checkSession: (stored, opts) => checkSession(runtime, stored, { ...opts, inflight: inflightChecks, failures: failedChecks }),
      logoutUrl: (session) => logoutUrl(tenantOrThrow(runtime, session.tenant), session.uid),
      initUrl: (name, opts) => initUrl(tenantOrThrow(runtime, name), opts),
    },
  };
}
