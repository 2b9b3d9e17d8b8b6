import { createHash } from 'node:crypto';
import forge from 'node-forge';

export interface SigningIdentity {
  privateKeyPem: string;
  certificatePem: string;
  fingerprint: string;
}

/** SHA-1 of the certificate DER as colon-separated upper-case hex (PROTOCOL §3.7). */
export function certificateFingerprint(certificatePem: string): string {
  const cert = forge.pki.certificateFromPem(certificatePem);
  const der = forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes();
  const hex = createHash('sha1').update(Buffer.from(der, 'binary')).digest('hex').toUpperCase();
  return hex.match(/.{2}/g)?.join(':') ?? hex;
}

/** Generates an RSA 2048 key and a self-signed X.509 certificate (10 years) for an IdP. */
export function generateSigningIdentity(commonName: string): SigningIdentity {
  // Synchronous generation: node-forge delegates to Node's native RSA generator when available.
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
  const privateKeyPem = forge.pki.privateKeyToPem(keys.privateKey);
  const forgeKey = keys.privateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = `01${forge.util.bytesToHex(forge.random.getBytesSync(8))}`;
  const now = new Date();
  cert.validity.notBefore = new Date(now.getTime() - 24 * 3600 * 1000);
  cert.validity.notAfter = new Date(now.getTime() + 10 * 365 * 24 * 3600 * 1000);
  const attrs = [
    { name: 'commonName', value: commonName },
    { name: 'organizationName', value: 'Maestrano Sandbox' },
    { name: 'countryName', value: 'AU' },
  ];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, nonRepudiation: true },
  ]);
  cert.sign(forgeKey, forge.md.sha256.create());
  const certificatePem = forge.pki.certificateToPem(cert);
  return { privateKeyPem, certificatePem, fingerprint: certificateFingerprint(certificatePem) };
}
