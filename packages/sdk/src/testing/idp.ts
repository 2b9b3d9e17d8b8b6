/**
 * A test identity provider that behaves like Maestrano's (PROTOCOL §3.3-§3.4): a real
 * 2048-bit RSA key with a self-signed certificate, assertions signed with exclusive C14N
 * (the Response itself unsigned), every Maestrano attribute. Building blocks are exported
 * separately (`buildAssertionXml`, `signAssertion`, `buildResponseXml`, `xsw`) so tests can
 * compose hostile variants: tampered, unsigned, wrapped (XSW), expired, wrong audience,
 * recipient or destination, signed by another key.
 */
import { createHash, generateKeyPairSync, randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import forge from 'node-forge';
import { SignedXml } from 'xml-crypto';
import type { MarketplaceInput } from '../config/tenant.js';

const SAML_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';
const SAMLP_NS = 'urn:oasis:names:tc:SAML:2.0:protocol';
const PERSISTENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';

export type TestSignatureAlgorithm = 'sha1' | 'sha256';

const SIGNATURE_ALGORITHMS: Record<TestSignatureAlgorithm, { signature: string; digest: string }> = {
  sha1: { signature: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1', digest: 'http://www.w3.org/2000/09/xmldsig#sha1' },
  sha256: {
    signature: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    digest: 'http://www.w3.org/2001/04/xmlenc#sha256',
  },
};

function esc(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function instant(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** A user as the test IdP knows it; everything but `uid`, `email` and `groupUid` has a default. */
export interface TestUser {
  uid: string;
  email: string;
  groupUid: string;
  firstName?: string;
  lastName?: string;
  country?: string;
  companyName?: string;
  groupName?: string;
  groupRole?: string;
  groupEmail?: string;
  groupCurrency?: string;
  groupTimezone?: string;
  groupCountry?: string;
  groupCity?: string;
  groupOrgUid?: string;
  groupEndFreeTrial?: Date;
  groupHasCreditCard?: boolean;
  groupResellerId?: string;
  session?: string;
  /** Default: now + 3 min. */
  sessionRecheck?: Date;
  reseller?: { id: string; name: string; country: string };
  appOwner?: boolean;
  organizations?: Record<string, { name: string; role: string }>;
  /** Attributes to add or override (a value of `null` removes the attribute). */
  extra?: Record<string, string | null>;
}

/** Every attribute of PROTOCOL §3.4 for `user`, as the sandbox IdP sends them. */
export function maestranoAttributes(user: TestUser, now: Date = new Date()): Record<string, string> {
  const attrs: Record<string, string> = {
    mno_uid: user.uid,
    uid: user.uid,
    virtual_uid: `${user.uid}.${user.groupUid}`,
    email: user.email,
    virtual_email: `${user.uid}.${user.groupUid}@mail.maestrano.com`,
    name: user.firstName ?? 'John',
    surname: user.lastName ?? 'Doe',
    country: user.country ?? 'AU',
    company_name: user.companyName ?? 'DoeCorp',
    mno_session: user.session ?? `sess-${randomUUID()}`,
    mno_session_recheck: (user.sessionRecheck ?? new Date(now.getTime() + 180_000)).toISOString(),
    group_uid: user.groupUid,
    group_name: user.groupName ?? `Group ${user.groupUid}`,
    group_role: user.groupRole ?? 'Admin',
    group_end_free_trial: (user.groupEndFreeTrial ?? new Date(now.getTime() + 30 * 86_400_000)).toISOString(),
    group_has_credit_card: String(user.groupHasCreditCard ?? false),
    group_email: user.groupEmail ?? `admin@${user.groupUid}.example`,
    group_currency: user.groupCurrency ?? 'USD',
    group_timezone: user.groupTimezone ?? 'America/Los_Angeles',
    group_country: user.groupCountry ?? 'US',
    group_city: user.groupCity ?? 'San Francisco',
    group_org_uid: user.groupOrgUid ?? `org-${user.groupUid.replace(/^cld-/, '')}`,
    group_reseller_id: user.groupResellerId ?? '',
    app_owner: String(user.appOwner ?? true),
    organizations: JSON.stringify(user.organizations ?? {}),
  };
  if (user.reseller) {
    attrs['reseller_id'] = user.reseller.id;
    attrs['reseller_name'] = user.reseller.name;
    attrs['reseller_country'] = user.reseller.country;
  }
  for (const [k, v] of Object.entries(user.extra ?? {})) {
    if (v === null) delete attrs[k];
    else attrs[k] = v;
  }
  return attrs;
}

export interface AssertionOptions {
  issuer: string;
  nameId: string;
  attributes: Record<string, string>;
  /** ACS URL: SubjectConfirmationData@Recipient. */
  recipient: string;
  /** Default: scheme + host of `recipient` and a trailing slash (`https://app.example.com/`, what Maestrano's IdP sets). */
  audience?: string;
  inResponseTo?: string | null;
  now?: Date;
  id?: string;
  /** Conditions@NotBefore offset from now (default -5 s). */
  notBeforeOffsetMs?: number;
  /** Conditions@NotOnOrAfter offset (default +1 h). */
  conditionsLifetimeMs?: number;
  /** SubjectConfirmationData@NotOnOrAfter offset (default +3 min). */
  subjectLifetimeMs?: number;
}

/** An unsigned Maestrano-shaped `saml:Assertion` (namespace declared on itself, so it can be signed alone). */
export function buildAssertionXml(o: AssertionOptions): string {
  const now = o.now ?? new Date();
  const id = o.id ?? `_${randomUUID()}`;
  const audience = o.audience ?? `${new URL(o.recipient).origin}/`;
  const irt = o.inResponseTo ? ` InResponseTo="${esc(o.inResponseTo)}"` : '';
  const attributes = Object.entries(o.attributes)
    .map(
      ([name, value]) =>
        `<saml:Attribute Name="${esc(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">` +
        `<saml:AttributeValue>${esc(value)}</saml:AttributeValue></saml:Attribute>`,
    )
    .join('');
  return (
    `<saml:Assertion xmlns:saml="${SAML_NS}" ID="${esc(id)}" IssueInstant="${instant(now)}" Version="2.0">` +
    `<saml:Issuer>${esc(o.issuer)}</saml:Issuer>` +
    `<saml:Subject><saml:NameID Format="${PERSISTENT}">${esc(o.nameId)}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">` +
    `<saml:SubjectConfirmationData${irt} NotOnOrAfter="${instant(new Date(now.getTime() + (o.subjectLifetimeMs ?? 180_000)))}" Recipient="${esc(o.recipient)}"/>` +
    `</saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${instant(new Date(now.getTime() + (o.notBeforeOffsetMs ?? -5_000)))}" NotOnOrAfter="${instant(new Date(now.getTime() + (o.conditionsLifetimeMs ?? 3_600_000)))}">` +
    `<saml:AudienceRestriction><saml:Audience>${esc(audience)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
    `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>` +
    `<saml:AuthnStatement AuthnInstant="${instant(now)}" SessionIndex="${esc(id)}"><saml:AuthnContext>` +
    `<saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</saml:AuthnContextClassRef>` +
    `</saml:AuthnContext></saml:AuthnStatement>` +
    `</saml:Assertion>`
  );
}

/** Enveloped signature over the assertion (exclusive C14N), placed after its Issuer, with the certificate in KeyInfo. */
export function signAssertion(
  assertionXml: string,
  key: { privateKey: string; certificate: string },
  algorithm: TestSignatureAlgorithm = 'sha256',
): string {
  const alg = SIGNATURE_ALGORITHMS[algorithm];
  const sig = new SignedXml({
    privateKey: key.privateKey,
    publicCert: key.certificate,
    signatureAlgorithm: alg.signature,
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  sig.addReference({
    xpath: "/*[local-name(.)='Assertion']",
    digestAlgorithm: alg.digest,
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
  });
  sig.computeSignature(assertionXml, {
    prefix: 'ds',
    location: { reference: "/*[local-name(.)='Assertion']/*[local-name(.)='Issuer']", action: 'after' },
  });
  return sig.getSignedXml();
}

export interface ResponseEnvelopeOptions {
  issuer: string;
  /** Response@Destination; null omits it. */
  destination: string | null;
  inResponseTo?: string | null;
  now?: Date;
  id?: string;
  status?: string;
  /** Extra XML placed in `samlp:Extensions` (XSW layouts). */
  extensions?: string;
}

/** A `samlp:Response` around already built (and signed) assertions. */
export function buildResponseXml(assertions: readonly string[], o: ResponseEnvelopeOptions): string {
  const now = o.now ?? new Date();
  const dest = o.destination === null ? '' : ` Destination="${esc(o.destination)}"`;
  const irt = o.inResponseTo ? ` InResponseTo="${esc(o.inResponseTo)}"` : '';
  const ext = o.extensions ? `<samlp:Extensions>${o.extensions}</samlp:Extensions>` : '';
  return (
    `<samlp:Response xmlns:samlp="${SAMLP_NS}" xmlns:saml="${SAML_NS}" ID="${esc(o.id ?? `_${randomUUID()}`)}" Version="2.0"` +
    ` IssueInstant="${instant(now)}"${dest}${irt} Consent="urn:oasis:names:tc:SAML:2.0:consent:unspecified">` +
    `<saml:Issuer>${esc(o.issuer)}</saml:Issuer>${ext}` +
    `<samlp:Status><samlp:StatusCode Value="${esc(o.status ?? 'urn:oasis:names:tc:SAML:2.0:status:Success')}"/></samlp:Status>` +
    assertions.join('') +
    `</samlp:Response>`
  );
}

/** Replaces the first value of attribute `name` inside an (already signed) assertion. */
export function tamperAttribute(xml: string, name: string, value: string): string {
  const re = new RegExp(`(<saml:Attribute Name="${name}"[^>]*><saml:AttributeValue>)([^<]*)(</saml:AttributeValue>)`);
  if (!re.test(xml)) throw new Error(`attribute ${name} not found`);
  return xml.replace(re, `$1${esc(value)}$3`);
}

/** Removes the enveloped signature of a signed assertion. */
export function stripSignature(xml: string): string {
  return xml.replace(/<ds:Signature[\s\S]*?<\/ds:Signature>/, '');
}

/**
 * XML Signature Wrapping layouts. Each takes the genuine signed assertion and an evil
 * (unsigned) one and returns the assertions/extensions to put in the Response.
 */
export const xsw = {
  /** Evil assertion first, the genuine signed one after it. */
  evilFirst: (signed: string, evil: string) => ({ assertions: [evil, signed], extensions: undefined }),
  /** Genuine signed assertion hidden in `samlp:Extensions`, the evil one in its place. */
  genuineInExtensions: (signed: string, evil: string) => ({ assertions: [evil], extensions: signed }),
  /** The genuine assertion nested inside the evil one (inside its Subject). */
  genuineInsideEvil: (signed: string, evil: string) => ({
    assertions: [evil.replace('</saml:Subject>', `${signed}</saml:Subject>`)],
    extensions: undefined,
  }),
} as const;
export type XswLayout = keyof typeof xsw;

/** What the SDK put in its AuthnRequest redirect. */
export interface ParsedAuthnRequest {
  id: string;
  issuer: string;
  acsUrl: string;
  destination: string | null;
  nameIdFormat: string | null;
  xml: string;
  /** Every query parameter of the redirect besides SAMLRequest. */
  params: URLSearchParams;
}

export interface LoginOptions {
  /** ACS URL (default: the AuthnRequest's, else required). */
  acsUrl?: string;
  inResponseTo?: string | null;
  audience?: string;
  recipient?: string;
  /** Response@Destination (default the ACS URL; null omits it). */
  destination?: string | null;
  now?: Date;
  assertionId?: string;
  algorithm?: TestSignatureAlgorithm;
  notBeforeOffsetMs?: number;
  conditionsLifetimeMs?: number;
  subjectLifetimeMs?: number;
  /** Transforms the signed assertion XML (tampering). */
  mutateSigned?: (signedAssertionXml: string) => string;
  /** Transforms the assertion XML before it is signed (an IdP writing it differently; the signature stays valid). */
  mutateUnsigned?: (assertionXml: string) => string;
  /** false: no signature at all. */
  sign?: boolean;
  /** Wrap the genuine assertion with an evil one carrying `evilUser`'s attributes. */
  xsw?: { layout: XswLayout; evilUser: TestUser };
  status?: string;
}

export interface TestIdp {
  /** The IdP signing certificate (PEM): pin it in the tenant's `sso.x509_certificate`. */
  readonly certificate: string;
  readonly privateKey: string;
  /** SHA-1 fingerprint, colon hex (for the fingerprint fallback). */
  readonly fingerprint: string;
  /** Issuer of responses (the IdP URL). */
  readonly issuer: string;
  /** A dev-platform marketplace object trusting this IdP. */
  marketplace(input: {
    name: string;
    appHost: string;
    apiId: string;
    apiKey: string;
    idpHost?: string;
    sso?: Partial<NonNullable<MarketplaceInput['sso']>>;
  }): MarketplaceInput;
  /** Decodes the AuthnRequest of an SDK init redirect (`Location` header). */
  parseAuthnRequest(location: string): ParsedAuthnRequest;
  /** The signed assertion XML (before wrapping in a Response). */
  assertionXml(user: TestUser, options: LoginOptions & { acsUrl: string }): string;
  /** A complete `samlp:Response` as XML. */
  responseXml(user: TestUser, options: LoginOptions & { acsUrl: string }): string;
  /** Base64 `SAMLResponse` form value. */
  response(user: TestUser, options: LoginOptions & { acsUrl: string }): string;
  /** Answers an AuthnRequest redirect: base64 SAMLResponse with `InResponseTo` = the request id. */
  respondTo(location: string, user: TestUser, options?: LoginOptions): { samlResponse: string; acsUrl: string; request: ParsedAuthnRequest };
}

/** Creates a self-signed RSA certificate and key (2048 bits unless told). */
export function createTestCertificate(options: { commonName?: string; bits?: number } = {}): {
  certificate: string;
  privateKey: string;
  fingerprint: string;
} {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: options.bits ?? 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = `01${randomBytes(8).toString('hex')}`;
  const now = new Date();
  cert.validity.notBefore = new Date(now.getTime() - 86_400_000);
  cert.validity.notAfter = new Date(now.getTime() + 10 * 365 * 86_400_000);
  const attrs = [{ name: 'commonName', value: options.commonName ?? 'test-idp.maestrano.local' }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.sign(forge.pki.privateKeyFromPem(privateKey), forge.md.sha256.create());
  const certificate = forge.pki.certificateToPem(cert);
  const der = new X509Certificate(certificate).raw;
  const fingerprint = createHash('sha1').update(der).digest('hex').match(/../g)!.join(':');
  return { certificate, privateKey, fingerprint };
}

/** A Maestrano-like test IdP with its own key and certificate. */
export function createTestIdp(options: { issuer?: string; algorithm?: TestSignatureAlgorithm; commonName?: string } = {}): TestIdp {
  const key = createTestCertificate({ commonName: options.commonName ?? 'test-idp.maestrano.local' });
  const issuer = options.issuer ?? 'http://idp.maestrano.test';

  const assertionXml = (user: TestUser, o: LoginOptions & { acsUrl: string }): string => {
    const now = o.now ?? new Date();
    const assertion = buildAssertionXml({
      issuer,
      nameId: user.uid,
      attributes: maestranoAttributes(user, now),
      recipient: o.recipient ?? o.acsUrl,
      inResponseTo: o.inResponseTo ?? null,
      now,
      ...(o.audience !== undefined ? { audience: o.audience } : {}),
      ...(o.assertionId !== undefined ? { id: o.assertionId } : {}),
      ...(o.notBeforeOffsetMs !== undefined ? { notBeforeOffsetMs: o.notBeforeOffsetMs } : {}),
      ...(o.conditionsLifetimeMs !== undefined ? { conditionsLifetimeMs: o.conditionsLifetimeMs } : {}),
      ...(o.subjectLifetimeMs !== undefined ? { subjectLifetimeMs: o.subjectLifetimeMs } : {}),
    });
    const written = o.mutateUnsigned ? o.mutateUnsigned(assertion) : assertion;
    if (o.sign === false) return written;
    const signed = signAssertion(written, key, o.algorithm ?? options.algorithm ?? 'sha256');
    return o.mutateSigned ? o.mutateSigned(signed) : signed;
  };

  const responseXml = (user: TestUser, o: LoginOptions & { acsUrl: string }): string => {
    const genuine = assertionXml(user, o);
    let assertions = [genuine];
    let extensions: string | undefined;
    if (o.xsw) {
      const evil = buildAssertionXml({
        issuer,
        nameId: o.xsw.evilUser.uid,
        attributes: maestranoAttributes(o.xsw.evilUser, o.now),
        recipient: o.recipient ?? o.acsUrl,
        inResponseTo: o.inResponseTo ?? null,
        ...(o.now ? { now: o.now } : {}),
        // Same ID as the genuine assertion, so a naive ID lookup finds the evil one.
        id: /ID="([^"]+)"/.exec(genuine)?.[1] ?? `_${randomUUID()}`,
      });
      ({ assertions, extensions } = xsw[o.xsw.layout](genuine, evil));
    }
    return buildResponseXml(assertions, {
      issuer,
      destination: o.destination === undefined ? o.acsUrl : o.destination,
      inResponseTo: o.inResponseTo ?? null,
      ...(o.now ? { now: o.now } : {}),
      ...(o.status ? { status: o.status } : {}),
      ...(extensions ? { extensions } : {}),
    });
  };

  const parseAuthnRequest = (location: string): ParsedAuthnRequest => {
    const url = new URL(location);
    const encoded = url.searchParams.get('SAMLRequest');
    if (!encoded) throw new Error('no SAMLRequest in the redirect');
    const xml = inflateRawSync(Buffer.from(encoded, 'base64')).toString('utf8');
    const pick = (re: RegExp) => re.exec(xml)?.[1] ?? null;
    const params = new URLSearchParams(url.searchParams);
    params.delete('SAMLRequest');
    return {
      id: pick(/\sID="([^"]+)"/) ?? '',
      issuer: pick(/<saml:Issuer>([^<]+)<\/saml:Issuer>/) ?? '',
      acsUrl: pick(/AssertionConsumerServiceURL="([^"]+)"/) ?? '',
      destination: pick(/Destination="([^"]+)"/),
      nameIdFormat: pick(/NameIDPolicy Format="([^"]+)"/),
      xml,
      params,
    };
  };

  return {
    certificate: key.certificate,
    privateKey: key.privateKey,
    fingerprint: key.fingerprint,
    issuer,
    marketplace: (input) => ({
      marketplace: input.name,
      app: { host: input.appHost },
      api: { id: input.apiId, key: input.apiKey, host: input.idpHost ?? issuer },
      sso: { idp: input.idpHost ?? issuer, x509_certificate: key.certificate, ...input.sso },
    }),
    parseAuthnRequest,
    assertionXml,
    responseXml,
    response: (user, o) => Buffer.from(responseXml(user, o), 'utf8').toString('base64'),
    respondTo: (location, user, o = {}) => {
      const request = parseAuthnRequest(location);
      const acsUrl = o.acsUrl ?? request.acsUrl;
      const samlResponse = Buffer.from(
        responseXml(user, { ...o, acsUrl, inResponseTo: o.inResponseTo === undefined ? request.id : o.inResponseTo }),
        'utf8',
      ).toString('base64');
      return { samlResponse, acsUrl, request };
    },
  };
}
