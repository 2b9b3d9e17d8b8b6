import { randomUUID } from 'node:crypto';
import { inflateRawSync, inflateSync } from 'node:zlib';
import { DOMParser } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import type { Group, Marketplace, Membership, SsoSession, User } from './types.js';
import { escapeHtml } from './util.js';

export class SamlRequestError extends Error {}

export interface AuthnRequestInfo {
  id: string | null;
  issuer: string;
  acsUrl: string | null;
}

function decodeXml(samlRequest: string): string {
  const raw = Buffer.from(samlRequest, 'base64');
  try {
    return inflateRawSync(raw).toString('utf8');
  } catch {
    try {
      return inflateSync(raw).toString('utf8');
    } catch {
      const text = raw.toString('utf8');
      if (text.trimStart().startsWith('<')) return text;
      throw new SamlRequestError('SAMLRequest is not a deflated, base64-encoded AuthnRequest');
    }
  }
}

/** Decodes an HTTP-Redirect AuthnRequest (raw DEFLATE + base64). */
export function decodeAuthnRequest(samlRequest: string): AuthnRequestInfo {
  const xml = decodeXml(samlRequest);
  if (/<!DOCTYPE/i.test(xml)) throw new SamlRequestError('DOCTYPE is not allowed in an AuthnRequest');
  let errored = false;
  const doc = new DOMParser({
    errorHandler: {
      warning: () => undefined,
      error: () => {
        errored = true;
      },
      fatalError: () => {
        errored = true;
      },
    },
  }).parseFromString(xml, 'text/xml');
  const root = doc.documentElement;
  if (errored || !root || root.localName !== 'AuthnRequest') throw new SamlRequestError('SAMLRequest does not contain an AuthnRequest');
  let issuer = '';
  const issuers = root.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:assertion', 'Issuer');
  for (let i = 0; i < issuers.length; i++) {
    const node = issuers.item(i);
    if (node && node.parentNode === root) issuer = (node.textContent ?? '').trim();
  }
  return {
    id: root.getAttribute('ID') || null,
    issuer,
    acsUrl: root.getAttribute('AssertionConsumerServiceURL') || null,
  };
}

function xmlEscape(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function isoSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export interface SamlResponseInput {
  marketplace: Marketplace;
  idpUrl: string;
  acsUrl: string;
  inResponseTo: string | null;
  user: User;
  group: Group;
  membership: Membership;
  session: SsoSession;
  now?: Date;
}

/** The attribute statement of PROTOCOL §3.4 (every value a string). */
function samlAttributes(input: Pick<SamlResponseInput, 'user' | 'group' | 'membership' | 'session'>, now: Date): Array<[string, string]> {
  const { user, group, membership, session } = input;
  return [
    ['mno_uid', user.id],
    ['uid', user.id],
    ['virtual_uid', `${user.id}.${group.id}`],
    ['email', user.email],
    ['virtual_email', `${user.id}.${group.id}@mno-api-sandbox-mail.maestrano.com`],
    ['name', user.name],
    ['surname', user.surname],
    ['country', user.country],
    ['company_name', user.companyName],
    ['mno_session', session.token],
    ['mno_session_recheck', new Date(now.getTime() + 3 * 60_000).toISOString()],
    ['group_uid', group.id],
    ['group_name', group.name],
    ['group_role', membership.role],
    ['group_end_free_trial', group.freeTrialEndAt],
    ['group_has_credit_card', group.hasCreditCard ? 'true' : 'false'],
    ['group_email', group.email],
    ['group_currency', group.currency],
    ['group_timezone', group.timezone],
    ['group_country', group.country],
    ['group_city', group.city],
    ['group_org_uid', group.orgUid],
    ['group_reseller_id', group.resellerId ?? ''],
    ['app_owner', 'true'],
    ['organizations', '{}'],
  ];
}

/**
 * Builds the SAML Response the sandbox IdP posts to the ACS (PROTOCOL §3.3): the Response
 * is unsigned; its single Assertion carries an enveloped signature (exclusive C14N,
 * RSA-SHA256, SHA-256 digest, X509 certificate in KeyInfo).
 */
export function buildSamlResponse(input: SamlResponseInput): { xml: string; assertionId: string } {
  const now = input.now ?? new Date();
  const responseId = `_${randomUUID()}`;
  const assertionId = `_${randomUUID()}`;
  const issueInstant = isoSeconds(now);
  const notBefore = isoSeconds(new Date(now.getTime() - 5_000));
  const notOnOrAfter = isoSeconds(new Date(now.getTime() + 3600_000));
  const confirmationNotOnOrAfter = isoSeconds(new Date(now.getTime() + 180_000));
  const acs = new URL(input.acsUrl);
  // As Maestrano's IdP writes it (`saml_acs_url[/^(.*?\/\/.*?\/)/, 1]`): with the trailing slash.
  const audience = `${acs.protocol}//${acs.host}/`;
  const irt = input.inResponseTo ? ` InResponseTo="${xmlEscape(input.inResponseTo)}"` : '';
  const attributes = samlAttributes(input, now)
    .map(
      ([name, value]) =>
        `<saml:Attribute Name="${name}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic"><saml:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">${xmlEscape(value)}</saml:AttributeValue></saml:Attribute>`,
    )
    .join('');
  const assertion =
    `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${assertionId}" IssueInstant="${issueInstant}" Version="2.0">` +
    `<saml:Issuer>${xmlEscape(input.idpUrl)}</saml:Issuer>` +
    `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">${xmlEscape(input.user.id)}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData${irt} NotOnOrAfter="${confirmationNotOnOrAfter}" Recipient="${xmlEscape(input.acsUrl)}"/></saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${notBefore}" NotOnOrAfter="${notOnOrAfter}"><saml:AudienceRestriction><saml:Audience>${xmlEscape(audience)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
    `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>` +
    `<saml:AuthnStatement AuthnInstant="${issueInstant}" SessionIndex="${assertionId}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
    `</saml:Assertion>`;
  const unsigned =
    `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${responseId}" Version="2.0" IssueInstant="${issueInstant}" Destination="${xmlEscape(input.acsUrl)}" Consent="urn:oasis:names:tc:SAML:2.0:consent:unspecified"${irt}>` +
    `<saml:Issuer>${xmlEscape(input.idpUrl)}</saml:Issuer>` +
    `<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
    assertion +
    `</samlp:Response>`;
  const sig = new SignedXml({
    privateKey: input.marketplace.privateKeyPem,
    publicCert: input.marketplace.certificatePem,
    signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  sig.addReference({
    xpath: `//*[local-name(.)='Assertion' and @ID='${assertionId}']`,
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
  });
  sig.computeSignature(unsigned, {
    prefix: 'ds',
    location: { reference: `//*[local-name(.)='Assertion']/*[local-name(.)='Issuer']`, action: 'after' },
  });
  return { xml: sig.getSignedXml(), assertionId };
}

/** The auto-submitting HTTP-POST binding form. */
export function autoPostForm(acsUrl: string, samlResponse: string, relayState: string | null): string {
  const relay = relayState !== null ? `<input type="hidden" name="RelayState" value="${escapeHtml(relayState)}"/>` : '';
  return `<!doctype html><html><head><meta charset="utf-8"><title>Signing in…</title></head><body onload="document.forms[0].submit()">
<form method="post" action="${escapeHtml(acsUrl)}" id="saml-form"><input type="hidden" name="SAMLResponse" value="${escapeHtml(samlResponse)}"/>${relay}
<noscript><p>JavaScript is off: press the button to continue.</p></noscript><button type="submit">Continue to the application</button></form></body></html>`;
}
