import { randomUUID } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import type { Tenant } from '../core/types.js';
import { safeReturnPath } from './return-path.js';
import { escapeXml } from './xml.js';

/** Query parameters of the init request that are forwarded to the IdP as received (PROTOCOL §7 finding 8). */
export const FORWARDED_PARAMS = ['group_id'] as const;

/**
 * Query parameters of the init request that carry the page to come back to after the login:
 * `return_to` (what `initUrl` sets), else `RelayState`. It reaches the IdP as `RelayState`,
 * which the IdP posts back to the ACS (`onLogin`'s `returnTo`).
 */
export const RETURN_TO_PARAMS = ['return_to', 'RelayState'] as const;

/** Largest `RelayState` the SAML HTTP-Redirect binding allows (SAML 2.0 Bindings §3.4.3), in bytes. */
export const RELAY_STATE_MAX_BYTES = 80;

/** `{idm || app.host}{init_path}` (PROTOCOL §3.1), with the group and the path to come back to. */
export function initUrl(tenant: Tenant, params: { groupId?: string; returnTo?: string } = {}): string {
  const url = new URL(tenant.sso.idm + tenant.sso.initPath);
  if (params.groupId) url.searchParams.set('group_id', params.groupId);
  if (params.returnTo) url.searchParams.set('return_to', params.returnTo);
  return url.toString();
}

/**
 * The `RelayState` to send the IdP for the return path an init request carries
 * (`RETURN_TO_PARAMS`): the value as a path of the app's origin (`safeReturnPath`), when it
 * fits the binding's 80 bytes. `dropped` says why a value that was sent is not forwarded (the
 * login goes on without it); never the value itself, which is untrusted.
 */
export function relayStateFor(tenant: Tenant, incoming: URLSearchParams): { relayState: string | null; dropped: string | null } {
  const name = RETURN_TO_PARAMS.find((param) => (incoming.get(param) ?? '') !== '');
  if (name === undefined) return { relayState: null, dropped: null };
  const path = safeReturnPath(incoming.get(name), tenant.app.host);
  if (path === null) return { relayState: null, dropped: `${name} is not a path of the app's origin` };
  if (Buffer.byteLength(path, 'utf8') > RELAY_STATE_MAX_BYTES) {
    return { relayState: null, dropped: `${name} is longer than the ${RELAY_STATE_MAX_BYTES} bytes a SAML RelayState may hold` };
  }
  return { relayState: path, dropped: null };
}

/** `{idm || app.host}{consume_path}`: the ACS URL. */
export function consumeUrl(tenant: Tenant): string {
  return tenant.sso.idm + tenant.sso.consumePath;
}

/** `{idp}{api.base}auth/saml`: the IdP SSO endpoint. */
export function idpSsoUrl(tenant: Tenant): string {
  return `${tenant.sso.idp}${tenant.api.base}auth/saml`;
}

/** SAML `IssueInstant` format: UTC, second precision. */
export function samlInstant(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

export interface BuiltAuthnRequest {
  id: string;
  xml: string;
  /** Redirect target: IdP endpoint + `SAMLRequest` + forwarded parameters (+ `RelayState`). */
  location: string;
  /** The `RelayState` sent to the IdP (the return path), or null. */
  relayState: string | null;
  /** Why the return path the init request carried was not forwarded, or null. */
  relayStateDropped: string | null;
}

/**
 * Builds the AuthnRequest of PROTOCOL §3.2 (Issuer = api id, ACS URL, persistent NameID,
 * HTTP-POST response binding), raw-DEFLATEs and base64-encodes it for the HTTP-Redirect
 * binding, and appends only the allow-listed parameters of the incoming init request, and
 * its return path as `RelayState` when that is safe (`relayStateFor`).
 */
export function buildAuthnRequest(tenant: Tenant, now: Date, incoming: URLSearchParams): BuiltAuthnRequest {
  const id = `_${randomUUID()}`;
  const destination = idpSsoUrl(tenant);
  const xml =
    `<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"` +
    ` ID="${escapeXml(id)}" Version="2.0" IssueInstant="${samlInstant(now)}" Destination="${escapeXml(destination)}"` +
    ` ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" AssertionConsumerServiceURL="${escapeXml(consumeUrl(tenant))}">` +
    `<saml:Issuer>${escapeXml(tenant.api.id)}</saml:Issuer>` +
    `<samlp:NameIDPolicy Format="${escapeXml(tenant.sso.nameIdFormat)}" AllowCreate="true"/>` +
    `</samlp:AuthnRequest>`;
  const url = new URL(destination);
  url.searchParams.set('SAMLRequest', deflateRawSync(Buffer.from(xml, 'utf8')).toString('base64'));
  for (const name of FORWARDED_PARAMS) {
    const value = incoming.get(name);
    if (value !== null && value.length > 0 && value.length <= 200) url.searchParams.set(name, value);
  }
  const { relayState, dropped } = relayStateFor(tenant, incoming);
  if (relayState !== null) url.searchParams.set('RelayState', relayState);
  return { id, xml, location: url.toString(), relayState, relayStateDropped: dropped };
}
