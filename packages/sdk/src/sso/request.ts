import { randomUUID } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import type { Tenant } from '../core/types.js';
import { escapeXml } from './xml.js';

/** Query parameters of the init request that are forwarded to the IdP (PROTOCOL §7 finding 8). */
export const FORWARDED_PARAMS = ['group_id'] as const;

/** `{idm || app.host}{init_path}` (PROTOCOL §3.1). */
export function initUrl(tenant: Tenant, params: { groupId?: string } = {}): string {
  const url = new URL(tenant.sso.idm + tenant.sso.initPath);
  if (params.groupId) url.searchParams.set('group_id', params.groupId);
  return url.toString();
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
  /** Redirect target: IdP endpoint + `SAMLRequest` + forwarded parameters. */
  location: string;
}

/**
 * Builds the AuthnRequest of PROTOCOL §3.2 (Issuer = api id, ACS URL, persistent NameID,
 * HTTP-POST response binding), raw-DEFLATEs and base64-encodes it for the HTTP-Redirect
 * binding, and appends only the allow-listed parameters of the incoming init request.
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
  return { id, xml, location: url.toString() };
}
