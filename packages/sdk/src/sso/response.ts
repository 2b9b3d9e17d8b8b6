import { X509Certificate } from 'node:crypto';
import { SAML, ValidateInResponseTo } from '@node-saml/node-saml';
import type { Tenant } from '../core/types.js';
import { SsoError, type SsoErrorReason } from '../errors/index.js';
import { certificateFingerprint, pinnedCertificates } from '../config/tenant.js';
import { consumeUrl } from './request.js';
import { attr, child, children, descendantsByLocalName, NS, parseUntrustedXml, text, XmlRejectedError } from './xml.js';

/** A SAML assertion that passed every check; its data comes from the signed bytes only. */
export interface ValidatedAssertion {
  assertionId: string;
  nameId: string;
  /**
   * When the IdP issued the assertion (its signed `IssueInstant`, the IdP's clock): a login
   * compares it with when a member removal was recorded (see `Provisioner.provision`).
   */
  issuedAt: Date;
  /** Attribute name -> values, in document order. */
  attributes: Map<string, string[]>;
  /** The request this answers (from the signed SubjectConfirmationData only), or null (IdP-initiated). */
  inResponseTo: string | null;
  /** Until when the assertion id must be remembered (latest validity bound + skew). */
  replayUntil: Date;
}

export interface ResponseValidatorOptions {
  clockSkewMs: number;
  /** Extra accepted audiences (besides the api id and the ACS origin, with or without its trailing slash). */
  audiences: readonly string[];
}

/**
 * Longest accepted validity window of an assertion (from now to its earlier NotOnOrAfter): its
 * id is remembered until it expires, so replay records never need to live longer than this.
 */
const MAX_ASSERTION_VALIDITY_MS = 7 * 86_400_000;

const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
const SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';

const MESSAGES: Record<SsoErrorReason, string> = {
  signature: 'The SAML response signature is invalid',
  certificate: "The SAML response is not signed with this marketplace's certificate",
  embedded_certificate_mismatch: "The SAML response carries a certificate other than this marketplace's certificate",
  expired: 'The SAML response has expired',
  not_yet_valid: 'The SAML response is not valid yet',
  audience: 'The SAML response is meant for another service provider',
  recipient: 'The SAML response is meant for another endpoint',
  destination: 'The SAML response is meant for another endpoint',
  in_response_to: 'The SAML response does not answer a login started in this browser',
  replay: 'The SAML response was already used',
  malformed: 'The SAML response is malformed',
  unknown_tenant: 'Unknown marketplace',
  status: 'The identity provider did not authenticate the user',
  provisioning_failed: 'Your account could not be set up, please try again',
  storage_unavailable: 'Sign-in is temporarily unavailable, please try again in a moment',
  session_check_failed: 'The session could not be checked',
};

/** The most of a refusal's detail kept: it may quote a value of the unverified POST (a Destination). */
const MAX_DETAIL_CHARS = 300;

/** `text` cut to `MAX_DETAIL_CHARS`, saying how long it was: one refused POST makes one short log line. */
export function boundedDetail(text: string): string {
  return text.length <= MAX_DETAIL_CHARS ? text : `${text.slice(0, MAX_DETAIL_CHARS)}… (${text.length} characters)`;
}

/** An `SsoError` with the reason's safe message; `detail` goes to `cause` (logs only). */
export function ssoError(reason: SsoErrorReason, detail?: string, cause?: unknown): SsoError {
  return new SsoError(reason, MESSAGES[reason], { cause: cause ?? (detail === undefined ? undefined : new Error(boundedDetail(detail))) });
}

/**
 * SAML times are UTC with a `Z` (SAML core §1.3.3). One without a zone would be read in the
 * server's local time by `Date.parse`, moving the validity window by the server's offset
 * (node-saml's own time checks are off: this is the only one), so it is refused.
 */
const SAML_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function parseTime(value: string | null, what: string): number | null {
  if (value === null) return null;
  const ms = SAML_TIME.test(value.trim()) ? Date.parse(value.trim()) : Number.NaN;
  if (Number.isNaN(ms)) throw ssoError('malformed', `${what} is not a UTC date-time`);
  return ms;
}

function checkWindow(nowMs: number, skew: number, notBefore: number | null, notOnOrAfter: number | null, what: string): void {
  if (notBefore !== null && nowMs + skew < notBefore) throw ssoError('not_yet_valid', `${what} NotBefore is in the future`);
  if (notOnOrAfter !== null && nowMs - skew >= notOnOrAfter) throw ssoError('expired', `${what} NotOnOrAfter has passed`);
}

/**
 * The DER bytes of a certificate written as PEM or as bare base64, whatever its line breaks
 * and indentation; null when the text is not base64 (so it can equal no certificate).
 */
function certificateDer(text: string): Buffer | null {
  const body = text.replace(/-----(?:BEGIN|END) [A-Z0-9 ]+-----/g, '').replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return null;
  return Buffer.from(body, 'base64');
}

/**
 * node-saml verifies each signature with the trusted certificate only and ignores its KeyInfo.
 * A signature that verifies while its KeyInfo carries another certificate is still refused:
 * the document would claim a signer other than the one that was checked (for whoever reads
 * KeyInfo later: logs, audits, a consumer that trusts it). Checked for every signature
 * node-saml reads, the direct `ds:Signature` children of the Response and of the assertion;
 * certificates are compared by their DER bytes, bare public keys (`ds:KeyValue`) by their RSA
 * modulus and exponent. A signature with neither passes.
 */
function checkEmbeddedCertificates(trustedPem: string, signedElements: readonly Element[]): void {
  let trusted: X509Certificate | undefined;
  const mismatch = (element: Element, what: string) =>
    ssoError('embedded_certificate_mismatch', `the ${element.localName} signature embeds ${what} other than the pinned one`);
  for (const element of signedElements) {
    for (const signature of children(element, NS.dsig, 'Signature')) {
      for (const embedded of descendantsByLocalName(signature, 'X509Certificate')) {
        trusted ??= new X509Certificate(trustedPem);
        if (!certificateDer(embedded.textContent ?? '')?.equals(trusted.raw)) throw mismatch(element, 'a certificate');
      }
      for (const keyValue of descendantsByLocalName(signature, 'KeyValue')) {
        trusted ??= new X509Certificate(trustedPem);
        if (!keyValueIsTrusted(keyValue, trusted)) throw mismatch(element, 'a public key');
      }
    }
  }
}

/** An unsigned big-endian integer without its leading zero bytes. */
function withoutLeadingZeros(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  return bytes.subarray(start);
}

/** The bytes of an integer written as base64 (any line breaks) in XML; null when not base64. */
function integerBytes(text: string | null): Buffer | null {
  const body = (text ?? '').replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return null;
  return withoutLeadingZeros(Buffer.from(body, 'base64'));
}

/** Whether a `ds:KeyValue` holds exactly the trusted certificate's RSA public key. */
function keyValueIsTrusted(keyValue: Element, trusted: X509Certificate): boolean {
  const rsa = descendantsByLocalName(keyValue, 'RSAKeyValue');
  // Any other kind of key (DSA, EC, unknown) cannot be the pinned RSA key.
  if (rsa.length !== 1 || keyValue.getElementsByTagName('*').length !== 3) return false;
  const jwk = trusted.publicKey.export({ format: 'jwk' });
  if (jwk.kty !== 'RSA' || !jwk.n || !jwk.e) return false;
  const modulus = integerBytes(text(descendantsByLocalName(keyValue, 'Modulus')[0] ?? null));
  const exponent = integerBytes(text(descendantsByLocalName(keyValue, 'Exponent')[0] ?? null));
  return (
    modulus !== null &&
    exponent !== null &&
    modulus.equals(withoutLeadingZeros(Buffer.from(jwk.n, 'base64url'))) &&
    exponent.equals(withoutLeadingZeros(Buffer.from(jwk.e, 'base64url')))
  );
}

function pemOfBase64(der: string): string {
  const body = der.replace(/\s+/g, '');
  return `-----BEGIN CERTIFICATE-----\n${body.match(/.{1,64}/g)?.join('\n') ?? ''}\n-----END CERTIFICATE-----`;
}

/**
 * SAML response validation: node-saml verifies the XML signature of the assertion against
 * the tenant's pinned certificate (the fingerprint is only a configured fallback that
 * selects the embedded certificate), and this class adds what node-saml 5.1 does not check
 * (found by running it against real IdP output): no DOCTYPE, exactly one assertion anywhere in the document,
 * Destination, Recipient, time windows with skew against our clock, audience, the
 * consistency of InResponseTo, that a signature on the Response itself verifies (node-saml
 * alone ignores one that does not), and that no signature node-saml reads (the Response's,
 * the assertion's) embeds a certificate other than the trusted one. Replay and the browser
 * binding of InResponseTo are checked by the caller, which owns storage and cookies.
 */
export class ResponseValidator {
  readonly #options: ResponseValidatorOptions;
  /**
   * The node-saml objects of each tenant (by the `Tenant` object: one a registry replaced or
   * removed is released with it), one per pinned certificate and Response-signature mode. Kept
   * for every tenant, not in one bounded cache for all: with more marketplaces than that bound
   * logging in, it was emptied over and over and each login built its objects again.
   */
  readonly #saml = new WeakMap<Tenant, Map<string, SAML>>();

  constructor(options: ResponseValidatorOptions) {
    this.#options = options;
  }

  /**
   * `responseSigned`: the Response carries its own signature, which must then verify too.
   * node-saml otherwise ignores a Response signature that does not verify (it only reads a
   * valid one as "signed") and accepts the document on the assertion's signature alone.
   */
  #samlFor(tenant: Tenant, pem: string, responseSigned: boolean): SAML {
    let own = this.#saml.get(tenant);
    if (!own) {
      own = new Map();
      this.#saml.set(tenant, own);
    }
    const key = `${responseSigned}\u0000${pem}`;
    let saml = own.get(key);
    if (!saml) {
      saml = new SAML({
        idpCert: pem,
        issuer: tenant.api.id,
        callbackUrl: consumeUrl(tenant),
        audience: false,
        wantAssertionsSigned: true,
        wantAuthnResponseSigned: responseSigned,
        acceptedClockSkewMs: -1,
        validateInResponseTo: ValidateInResponseTo.never,
      });
      // A few per tenant (the certificates of a key rollover, each in two modes); the bound only
      // guards against a tenant object whose certificate keeps changing.
      if (own.size >= 16) own.clear();
      own.set(key, saml);
    }
    return saml;
  }

  async validate(tenant: Tenant, samlResponse: string, now: Date): Promise<ValidatedAssertion> {
    const acs = consumeUrl(tenant);
    const compact = samlResponse.replace(/\s+/g, '');
    if (compact.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) throw ssoError('malformed', 'SAMLResponse is not base64');
    const xml = Buffer.from(compact, 'base64').toString('utf8');

    let doc: Document;
    try {
      doc = parseUntrustedXml(xml);
    } catch (error) {
      if (error instanceof XmlRejectedError) throw ssoError('malformed', error.message);
      throw error;
    }
    const root = doc.documentElement;
    if (root.localName !== 'Response' || root.namespaceURI !== NS.protocol) throw ssoError('malformed', 'root is not samlp:Response');

    const status = child(root, NS.protocol, 'Status');
    const code = status ? attr(child(status, NS.protocol, 'StatusCode'), 'Value') : null;
    // Unverified text (no signature is checked yet): kept short in the error and its log line.
    if (code !== SUCCESS) throw ssoError('status', `status ${code === null ? '(none)' : JSON.stringify(code.slice(0, 200))}`);

    const assertions = descendantsByLocalName(doc, 'Assertion');
    const encrypted = descendantsByLocalName(doc, 'EncryptedAssertion');
    if (assertions.length + encrypted.length === 0) throw ssoError('malformed', 'no assertion');
    if (assertions.length + encrypted.length > 1) throw ssoError('signature', 'more than one assertion (wrapping)');
    const assertion = assertions[0];
    if (!assertion || assertion.parentNode !== root || assertion.namespaceURI !== NS.assertion) {
      throw ssoError('signature', 'the assertion is not a direct child of the response');
    }

    const destination = attr(root, 'Destination');
    if (destination !== null && destination !== acs) throw ssoError('destination', `Destination ${destination}`);

    // Trust anchor: the pinned certificate; the fingerprint only selects the embedded one.
    const signature = child(assertion, NS.dsig, 'Signature');
    // Parsed lazily: only the fingerprint fallback and error classification need it.
    const embedded = (): X509Certificate | null => {
      const b64 = signature ? text(descendantsByLocalName(signature, 'X509Certificate')[0] ?? null) : null;
      if (!b64) return null;
      try {
        return new X509Certificate(pemOfBase64(b64));
      } catch {
        return null;
      }
    };
    // The certificates to verify with, in order: the pinned ones (several during an IdP key
    // rollover; the one the signature's KeyInfo names first, so that a response usually costs one
    // verification), or the embedded one its fingerprint selects.
    let pems: string[];
    const pinned = pinnedCertificates(tenant.sso.x509Certificate);
    if (pinned.length > 0) {
      const named = pinned.length > 1 ? embedded() : null;
      const isNamed = (pem: string) => named !== null && new X509Certificate(pem).raw.equals(named.raw);
      pems = [...pinned.filter(isNamed), ...pinned.filter((pem) => !isNamed(pem))];
    } else if (tenant.sso.x509Fingerprint) {
      const embeddedCert = embedded();
      if (!embeddedCert) throw ssoError(signature ? 'certificate' : 'signature', 'no usable embedded certificate for the fingerprint fallback');
      if (certificateFingerprint(embeddedCert.raw) !== tenant.sso.x509Fingerprint) {
        throw ssoError('certificate', 'embedded certificate does not match the configured fingerprint');
      }
      pems = [embeddedCert.toString()];
    } else {
      throw ssoError('certificate', 'no certificate configured');
    }

    // A signature present on the Response must verify as well (defence in depth: the
    // Maestrano layout signs the assertion only, and a broken outer signature means the
    // document was altered or signed by someone else).
    const responseSigned = child(root, NS.dsig, 'Signature') !== null;
    let signedXml = '';
    let signedNameId: string | undefined;
    let pem: string | undefined;
    /**
     * What is reported when no certificate verifies: the first one's failure, unless a later one
     * verified the Response's own signature (the key the Response is signed with: what failed
     * after it, its assertion's signature, is the reason, not the other keys' document signature).
     */
    let failure: { error: unknown } | undefined;
    const documentSignature = (error: unknown) => error instanceof Error && /Invalid document signature/.test(error.message);
    for (const candidate of pems) {
      try {
        const result = await this.#samlFor(tenant, candidate, responseSigned).validatePostResponseAsync({ SAMLResponse: compact });
        if (!result.profile) throw ssoError('malformed', 'no profile in the response');
        signedXml = result.profile.getAssertionXml?.() ?? '';
        signedNameId = result.profile.nameID;
        pem = candidate;
        break;
      } catch (error) {
        if (error instanceof SsoError) throw error;
        // A failure that is not the signature's (a status, a malformed document) is the same
        // whichever certificate is tried: it is the reason, not a signature the next one verifies.
        if (!(error instanceof Error && /signature/i.test(error.message))) {
          failure = { error };
          break;
        }
        if (failure === undefined || (documentSignature(failure.error) && !documentSignature(error))) failure = { error };
      }
    }
    if (pem === undefined) {
      const { error } = failure!;
      if (responseSigned && documentSignature(error)) {
        // Another IdP's certificate in the Response's KeyInfo is the more precise reason: one
        // that is none of the trusted ones (in a rollover bundle, the other pinned certificate
        // is this marketplace's too, and the Response's signature is what failed).
        const mismatches = pems.map((trusted) => {
          try {
            checkEmbeddedCertificates(trusted, [root]);
            return null;
          } catch (mismatch) {
            return mismatch;
          }
        });
        if (mismatches.every((m) => m !== null)) throw mismatches[0];
        throw ssoError('signature', "the Response's own signature does not verify with the pinned certificate", error);
      }
      throw this.#classify(pinned, error, embedded, Boolean(signature));
    }
    checkEmbeddedCertificates(pem, [root, assertion]);

    // node-saml verified the signature of the only Assertion of the document (a direct
    // child of the Response, checked above), over its canonical form: reading that element
    // from our DOM of the same bytes reads the signed content (text is read with
    // textContent, so comments cannot truncate values). Cross-check against node-saml's
    // own reading of the signed bytes.
    const assertionId = attr(assertion, 'ID');
    if (!assertionId || !signedXml.includes(`ID="${assertionId}"`)) {
      throw ssoError('signature', 'signed content is not the assertion of the response');
    }
    const validated = this.#checkAssertion(tenant, assertion, assertionId, attr(root, 'InResponseTo'), now, acs);
    if (signedNameId?.trim() !== validated.nameId) throw ssoError('signature', 'NameID differs from the signed assertion');
    return validated;
  }

  /** `pinned`: the tenant's pinned certificates (none with the fingerprint fallback). */
  #classify(pinned: readonly string[], error: unknown, embeddedCert: () => X509Certificate | null, signed: boolean): SsoError {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof Error && error.name === 'SamlStatusError') return ssoError('status', message, error);
    if (/multiple assertions|ID cannot refer|Referenced node|Too many signatures|too many transforms|Only 1 signed|signature reference/i.test(message)) {
      return ssoError('signature', message, error);
    }
    if (/signature/i.test(message)) {
      const embedded = signed ? embeddedCert() : null;
      if (embedded && pinned.length > 0 && !pinned.some((pem) => new X509Certificate(pem).raw.equals(embedded.raw))) {
        return ssoError('certificate', 'signed with another certificate', error);
      }
      return ssoError('signature', message, error);
    }
    return ssoError('malformed', message, error);
  }

  #checkAssertion(
    tenant: Tenant,
    assertion: Element,
    assertionId: string,
    responseInResponseTo: string | null,
    now: Date,
    acs: string,
  ): ValidatedAssertion {
    const nowMs = now.getTime();
    const skew = this.#options.clockSkewMs;

    // Required by SAML core (§2.3.3), and read from the signed assertion, not the unsigned
    // Response: it tells a response issued before a member removal from one issued after it.
    const issuedAt = parseTime(attr(assertion, 'IssueInstant'), 'Assertion IssueInstant');
    if (issuedAt === null) throw ssoError('malformed', 'Assertion without IssueInstant');
    if (issuedAt > nowMs + skew) throw ssoError('not_yet_valid', 'Assertion IssueInstant is in the future');

    const subject = child(assertion, NS.assertion, 'Subject');
    const nameId = text(subject ? child(subject, NS.assertion, 'NameID') : null);
    if (!subject || !nameId) throw ssoError('malformed', 'no NameID');

    // Recipient and the subject's time window (bearer confirmation).
    const bearers = children(subject, NS.assertion, 'SubjectConfirmation').filter((c) => attr(c, 'Method') === BEARER);
    if (bearers.length === 0) throw ssoError('malformed', 'no bearer SubjectConfirmation');
    const data = bearers
      .map((c) => child(c, NS.assertion, 'SubjectConfirmationData'))
      .find((d): d is Element => d !== null && attr(d, 'Recipient') === acs);
    if (!data) throw ssoError('recipient', 'no SubjectConfirmationData for this ACS');
    const subjectNotOnOrAfter = parseTime(attr(data, 'NotOnOrAfter'), 'SubjectConfirmationData');
    // Required by the Web Browser SSO profile; it also bounds how long replay records live.
    if (subjectNotOnOrAfter === null) throw ssoError('malformed', 'SubjectConfirmationData without NotOnOrAfter');
    checkWindow(nowMs, skew, parseTime(attr(data, 'NotBefore'), 'SubjectConfirmationData'), subjectNotOnOrAfter, 'SubjectConfirmationData');

    // Conditions: time window and audience.
    const conditionsList = children(assertion, NS.assertion, 'Conditions');
    if (conditionsList.length !== 1) throw ssoError('malformed', 'expected exactly one Conditions');
    const conditions = conditionsList[0]!;
    const notOnOrAfter = parseTime(attr(conditions, 'NotOnOrAfter'), 'Conditions');
    checkWindow(nowMs, skew, parseTime(attr(conditions, 'NotBefore'), 'Conditions'), notOnOrAfter, 'Conditions');
    // Maestrano's IdP writes the ACS origin with a trailing slash (`https://app.example.com/`,
    // the saml_idp gem's `saml_acs_url[/^(.*?\/\/.*?\/)/, 1]`, PROTOCOL §3.3): both spellings.
    // The gem copies the ACS URL's text, so its spelling is accepted too (`URL.origin` lowercases
    // the host and drops a default port: `https://App.example.com:443/`).
    const origin = new URL(acs).origin;
    const literal = /^(.*?\/\/.*?\/)/.exec(acs)?.[1] ?? `${acs}/`;
    const accepted = new Set([tenant.api.id, origin, `${origin}/`, literal, literal.slice(0, -1), acs, ...this.#options.audiences]);
    const restrictions = children(conditions, NS.assertion, 'AudienceRestriction');
    if (restrictions.length === 0) throw ssoError('audience', 'no AudienceRestriction');
    for (const restriction of restrictions) {
      const audiences = children(restriction, NS.assertion, 'Audience').map((a) => text(a) ?? '');
      if (!audiences.some((a) => accepted.has(a))) throw ssoError('audience', `audience ${audiences.join(', ')}`);
    }

    const subjectInResponseTo = attr(data, 'InResponseTo');
    if (subjectInResponseTo !== null && responseInResponseTo !== null && subjectInResponseTo !== responseInResponseTo) {
      throw ssoError('in_response_to', 'Response and SubjectConfirmationData disagree on InResponseTo');
    }

    const attributes = new Map<string, string[]>();
    for (const statement of children(assertion, NS.assertion, 'AttributeStatement')) {
      for (const attribute of children(statement, NS.assertion, 'Attribute')) {
        const name = attr(attribute, 'Name');
        if (!name) continue;
        const values = children(attribute, NS.assertion, 'AttributeValue').map((v) => v.textContent ?? '');
        attributes.set(name, [...(attributes.get(name) ?? []), ...values]);
      }
    }

    // Usable while both windows hold, so until the earlier bound (plus skew). The assertion id
    // is remembered that long; a longer window than the cap is refused rather than remembered
    // for less time than it stays valid (it could be replayed once the record expired).
    const bound = Math.min(subjectNotOnOrAfter, notOnOrAfter ?? subjectNotOnOrAfter);
    if (bound - nowMs > MAX_ASSERTION_VALIDITY_MS) {
      throw new SsoError('malformed', 'The SAML response is valid for too long (more than 7 days)', {
        cause: new Error(`assertion valid until ${new Date(bound).toISOString()}, beyond the 7-day replay-record cap`),
      });
    }
    return {
      assertionId,
      nameId,
      issuedAt: new Date(issuedAt),
      attributes,
      // Only the signed SubjectConfirmationData binds the assertion to a request (the Web
      // Browser SSO profile requires it there): Response@InResponseTo is unsigned here, so an
      // unsolicited assertion wrapped in a Response claiming a request stays unsolicited.
      inResponseTo: subjectInResponseTo,
      replayUntil: new Date(bound + skew),
    };
  }
}
