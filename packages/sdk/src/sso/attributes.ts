import type { Tenant } from '../core/types.js';
import { parseUtcTimestamp } from '../internal/time.js';
import { ssoError, type ValidatedAssertion } from './response.js';
import type { SsoGroup, SsoMembership, SsoSession, SsoUser } from './types.js';

export interface SsoIdentity {
  user: SsoUser;
  group: SsoGroup;
  membership: SsoMembership;
  session: SsoSession;
  /** When the IdP issued the assertion (`ValidatedAssertion.issuedAt`). */
  issuedAt: Date;
}

function reader(attributes: Map<string, string[]>) {
  const one = (name: string): string | null => {
    const v = attributes.get(name)?.[0];
    return v === undefined ? null : v.trim();
  };
  const opt = (name: string): string | null => {
    const v = one(name);
    return v === null || v === '' ? null : v;
  };
  const req = (name: string): string => {
    const v = opt(name);
    if (v === null) throw ssoError('malformed', `missing attribute ${name}`);
    return v;
  };
  const bool = (name: string): boolean => opt(name)?.toLowerCase() === 'true';
  const date = (name: string): Date | null => {
    const v = opt(name);
    if (v === null) return null;
    const ms = parseUtcTimestamp(v);
    return Number.isNaN(ms) ? null : new Date(ms);
  };
  return { one, opt, req, bool, date };
}

function organizations(raw: string | null): SsoUser['organizations'] {
  if (!raw) return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
    const out: SsoUser['organizations'] = {};
    for (const [uid, value] of Object.entries(parsed)) {
      if (typeof value !== 'object' || value === null) continue;
      const v = value as Record<string, unknown>;
      const entry = {
        ...(typeof v['name'] === 'string' ? { name: v['name'] } : {}),
        ...(typeof v['role'] === 'string' ? { role: v['role'] } : {}),
      };
      // Defined, not assigned: an organisation keyed `__proto__` stays an entry instead of
      // becoming the map's prototype.
      Object.defineProperty(out, uid, { value: entry, enumerable: true, writable: true, configurable: true });
    }
    return out;
  } catch {
    return {};
  }
}

/**
 * Types the attributes of a validated assertion (PROTOCOL §3.4) and applies the tenant's
 * identity mode (§3.5). The NameID is the user uid: each of `uid` and `mno_uid`, when
 * present, must equal it (one disagreeing attribute refuses the response).
 */
export function identityFrom(tenant: Tenant, assertion: ValidatedAssertion): SsoIdentity {
  const a = reader(assertion.attributes);
  const uid = assertion.nameId;
  for (const name of ['uid', 'mno_uid']) {
    const value = a.opt(name);
    if (value !== null && value !== uid) throw ssoError('malformed', `the ${name} attribute does not match the NameID`);
  }
  const groupUid = a.req('group_uid');
  const email = a.req('email');
  const virtualUid = a.opt('virtual_uid') ?? `${uid}.${groupUid}`;
  const virtualEmail = a.opt('virtual_email') ?? email;
  const virtual = tenant.sso.creationMode === 'virtual';
  const resellerId = a.opt('reseller_id');
  const user: SsoUser = {
    key: virtual ? virtualUid : uid,
    appEmail: virtual ? virtualEmail : email,
    uid,
    virtualUid,
    email,
    virtualEmail,
    mnoUid: a.opt('mno_uid') ?? uid,
    firstName: a.opt('name') ?? '',
    lastName: a.opt('surname') ?? '',
    country: a.opt('country'),
    companyName: a.opt('company_name'),
    appOwner: a.bool('app_owner'),
    organizations: organizations(a.opt('organizations')),
    reseller: resellerId ? { id: resellerId, name: a.opt('reseller_name'), country: a.opt('reseller_country') } : null,
  };
  const group: SsoGroup = {
    uid: groupUid,
    name: a.opt('group_name') ?? groupUid,
    endFreeTrial: a.date('group_end_free_trial'),
    hasCreditCard: a.bool('group_has_credit_card'),
    email: a.opt('group_email'),
    currency: a.opt('group_currency'),
    timezone: a.opt('group_timezone'),
    country: a.opt('group_country'),
    city: a.opt('group_city'),
    orgUid: a.opt('group_org_uid'),
    resellerId: a.opt('group_reseller_id'),
  };
  const membership: SsoMembership = { groupUid, userKey: user.key, role: a.opt('group_role') ?? 'Member' };
  const recheck = a.date('mno_session_recheck');
  const session: SsoSession = {
    tenant: tenant.name,
    uid,
    groupUid,
    session: a.opt('mno_session') ?? '',
    recheck: (recheck ?? new Date(0)).toISOString(),
  };
  return { user, group, membership, session, issuedAt: assertion.issuedAt };
}

/** The group attributes as stored in a `company.created` job payload (ISO dates as strings). */
export function groupPayload(group: SsoGroup): Record<string, string | boolean | null> {
  return {
    uid: group.uid,
    name: group.name,
    endFreeTrial: group.endFreeTrial ? group.endFreeTrial.toISOString() : null,
    hasCreditCard: group.hasCreditCard,
    email: group.email,
    currency: group.currency,
    timezone: group.timezone,
    country: group.country,
    city: group.city,
    orgUid: group.orgUid,
    resellerId: group.resellerId,
  };
}
