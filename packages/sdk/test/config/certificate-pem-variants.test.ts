/**
 * sso.x509_certificate as integrators and platforms actually write it: the PEM on one line
 * (newlines turned into spaces or dropped by a form field or an env var), indented lines (a
 * block pasted into a pretty-printed file), CRLF escaped as `\r\n` text. Maestrano's reference
 * SDK (ruby-saml's `format_cert`) strips the whitespace of the body and re-wraps it, so these
 * are the same certificate; OpenSSL's PEM reader alone refuses them.
 */
import { X509Certificate } from 'node:crypto';
import { parseMarketplacesDocument, tenantsFromDevPlatform } from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';
import { startPlatform } from './helpers.js';

const { certificate, fingerprint } = createTestCertificate({ bits: 1024 });
const canonical = new X509Certificate(certificate).toString().trim();
const lines = certificate.trim().split(/\r?\n/);

const marketplace = (name: string, pem: string) => ({
  marketplace: name,
  app: { host: 'https://app.example.com' },
  api: { id: `app-${name}`, key: `key-${name}`, host: 'https://api-hub.example.com' },
  sso: { x509_certificate: pem, x509_fingerprint: fingerprint },
});

const variants: Record<string, string> = {
  'one line, spaces between header, body and footer': lines.join(' '),
  'one line, no separators': lines.join(''),
  'indented lines': lines.map((l) => `    ${l}`).join('\n'),
  'CRLF escaped as \\r\\n text': lines.join('\\r\\n'),
  'trailing spaces on each line': lines.map((l) => `${l}  `).join('\n'),
};

describe('sso.x509_certificate whitespace variants', () => {
  for (const [label, pem] of Object.entries(variants)) {
    it(`reads ${label} as the same certificate`, () => {
      const [tenant] = parseMarketplacesDocument({ marketplaces: [marketplace('a', pem)] }, 'test');
      expect(tenant!.sso.x509Certificate).toBe(canonical);
      expect(tenant!.sso.x509Fingerprint).toBe(fingerprint);
    });
  }

  it('still refuses a body that is not a certificate, naming the key only', () => {
    const broken = lines.map((l, i) => (i === 2 ? 'not-base64!!' : l)).join(' ');
    expect(() => parseMarketplacesDocument({ marketplaces: [marketplace('a', broken)] }, 'test')).toThrow(
      /marketplaces\[0\]\.sso\.x509_certificate: not a valid PEM certificate/,
    );
  });

  it('a developer platform serving a one-line PEM starts with that tenant', async () => {
    const document = JSON.stringify({ marketplaces: [marketplace('acme', lines.join(' '))] });
    const platform = await startPlatform((_n, _req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(document);
    });
    try {
      const tenants = await tenantsFromDevPlatform({ host: platform.host, key: 'k', secret: 's', refreshMs: 0 });
      expect(tenants.list().map((t) => t.name)).toEqual(['acme']);
      expect(tenants.get('acme')!.sso.x509Certificate).toBe(canonical);
      tenants.close();
    } finally {
      await platform.close();
    }
  });
});
