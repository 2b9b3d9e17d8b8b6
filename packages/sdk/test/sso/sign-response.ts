import { SignedXml } from 'xml-crypto';

/**
 * An enveloped signature over the SAML Response (exclusive C14N, RSA-SHA256), placed after its
 * Issuer, with `key`'s certificate in KeyInfo: how an IdP signs the outer Response. Tests use it
 * with the test IdP's key, another IdP's, or an attacker's.
 */
export function signResponse(responseXml: string, key: { privateKey: string; certificate: string }): string {
  const sig = new SignedXml({
    privateKey: key.privateKey,
    publicCert: key.certificate,
    signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  sig.addReference({
    xpath: "/*[local-name(.)='Response']",
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
  });
  sig.computeSignature(responseXml, {
    prefix: 'ds',
    location: { reference: "/*[local-name(.)='Response']/*[local-name(.)='Issuer']", action: 'after' },
  });
  return sig.getSignedXml();
}
