import * as z from 'zod';
import type { Runtime, Tenant } from '../core/types.js';
import { SsoError } from '../errors/index.js';
import { parseUtcTimestamp } from '../internal/time.js';
import { initUrl } from './request.js';
import type { SsoSession } from './types.js';

const StoredSession = z.object({
  tenant: z.string().min(1),
  uid: z.string().min(1),
  groupUid: z.string().min(1),
  session: z.string(),
  recheck: z.string(),
});

const CheckAnswer = z.object({ valid: z.boolean(), recheck: z.string().optional().nullable() });

export type SessionCheckResult =
  | {
      valid: true;
      /** The session to store back (its `recheck` moved forward after a remote check). */
      session: SsoSession;
      /** True when the IdP was asked (the recheck time had passed). */
      checked: boolean;
    }
  | {
      valid: false;
      /** `ended`: the IdP says the session is over; `malformed`: not a stored SSO session; `unknown_tenant`. */
      reason: 'ended' | 'malformed' | 'unknown_tenant';
      /** Where to send the user to log in again (null when the tenant is unknown). */
      initUrl: string | null;
    };

/** `{idp}/app_logout?user_uid={uid}` (PROTOCOL §3.6): where to send the user after ending the app session. */
export function logoutUrl(tenant: Tenant, uid: string): string {
  const url = new URL(`${tenant.sso.idp}/app_logout`);
  url.searchParams.set('user_uid', uid);
  return url.toString();
}

/**
 * The session re-check of PROTOCOL §3.6: valid without a network call until `recheck`;
 * after it, one `GET {idp}{api.base}auth/saml/{uid}?session={token}`. An IdP that cannot be
 * reached or answers garbage is an `SsoError` (`session_check_failed`, status 502): the
 * app decides whether to fail open or closed. The URL (it carries the token) is never logged.
 */
export async function checkSession(
  runtime: Runtime,
  stored: unknown,
  options: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<SessionCheckResult> {
  const parsed = StoredSession.safeParse(stored);
  if (!parsed.success) return { valid: false, reason: 'malformed', initUrl: null };
  const session = parsed.data;
  const tenant = runtime.tenants.get(session.tenant);
  if (!tenant) return { valid: false, reason: 'unknown_tenant', initUrl: null };
  if (!tenant.sso.sloEnabled) return { valid: true, session, checked: false };
  const recheckMs = Date.parse(session.recheck);
  const now = runtime.clock().getTime();
  if (session.session && !Number.isNaN(recheckMs) && now < recheckMs) return { valid: true, session, checked: false };

  const url = new URL(`${tenant.sso.idp}${tenant.api.base}auth/saml/${encodeURIComponent(session.uid)}`);
  url.searchParams.set('session', session.session);
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 10_000);
  let answer: unknown;
  try {
    const response = await runtime.fetch(url, {
      headers: { accept: 'application/json' },
      signal: options.signal ? AbortSignal.any([options.signal, timeout]) : timeout,
    });
    if (!response.ok) {
      await response.body?.cancel().catch(() => {});
      throw new Error(`IdP answered HTTP ${response.status}`);
    }
    answer = await response.json();
  } catch (cause) {
    throw new SsoError('session_check_failed', 'The session could not be checked', {
      status: 502,
      cause: cause instanceof Error ? new Error(`${cause.name}: ${cause.message}`) : cause,
    });
  }
  const result = CheckAnswer.safeParse(answer);
  if (!result.success) {
    throw new SsoError('session_check_failed', 'The session could not be checked', {
      status: 502,
      cause: new Error('unexpected session check answer'),
    });
  }
  const next = result.data.recheck ? parseUtcTimestamp(result.data.recheck) : Number.NaN;
  if (!result.data.valid || Number.isNaN(next)) {
    return { valid: false, reason: 'ended', initUrl: initUrl(tenant, { groupId: session.groupUid }) };
  }
  return { valid: true, session: { ...session, recheck: new Date(next).toISOString() }, checked: true };
}
