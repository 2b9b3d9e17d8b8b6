/**
 * Two marketplaces that trust one IdP certificate cannot tell each other's SAML responses apart
 * (the IdP takes Audience and Recipient from the AuthnRequest; nothing in the assertion names
 * the marketplace). Accepted, but logged as a warning naming the marketplaces and the
 * certificate's fingerprint, at start-up and when a developer-platform refresh brings a pair.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMaestrano, type Logger, type MaestranoConfigInput, type MarketplaceInput, memoryAdapter, tenantsFromDevPlatform } from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LogEntry, recordingLogger } from './helpers.js';

const shared = createTestCertificate({ bits: 1024 });
const own = createTestCertificate({ bits: 1024 });
const API_KEY = 'api-key-must-not-leak';
const SHARED_FINGERPRINT = shared.fingerprint.toLowerCase();

const sharedWarnings = (entries: LogEntry[]) => entries.filter((e) => e.level === 'warn' && e.message.includes('trust the same IdP certificate'));

const marketplace = (name: string, sso: MarketplaceInput['sso']): MarketplaceInput => ({
  marketplace: name,
  app: { host: 'https://app.example.com' },
  api: { id: `app-${name}`, key: API_KEY, host: 'https://api-hub.example.com' },
  sso,
});

const config = (tenants: MaestranoConfigInput['tenants'], logger: Logger): MaestranoConfigInput => ({
  tenants,
  storage: memoryAdapter(),
  provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
  onLogin: () => new Response('ok'),
  logger,
});

describe('marketplaces trusting one IdP certificate', () => {
  it('createMaestrano warns once per certificate, naming the marketplaces and its fingerprint', () => {
    const { logger, entries } = recordingLogger();
    createMaestrano(
      config(
        [
          marketplace('alpha', { x509_certificate: shared.certificate }),
          marketplace('beta', { x509_certificate: own.certificate }),
          // A fingerprint alone pins the same certificate; so does a rollover bundle holding it.
          marketplace('gamma', { x509_fingerprint: shared.fingerprint }),
          marketplace('delta', { x509_certificate: `${own.certificate.trim()}\n${shared.certificate.trim()}` }),
        ],
        logger,
      ),
    );
    const warnings = sharedWarnings(entries);
    expect(warnings.map((w) => w.fields)).toEqual([
      { fingerprint: SHARED_FINGERPRINT, marketplaces: ['alpha', 'gamma', 'delta'] },
      { fingerprint: own.fingerprint.toLowerCase(), marketplaces: ['beta', 'delta'] },
    ]);
    expect(warnings[0]?.message).toMatch(/one IdP certificate per marketplace/);
    expect(JSON.stringify(entries)).not.toContain(API_KEY);
  });

  it('says nothing when each marketplace has its own certificate, or when the other one does not sign in', () => {
    const { logger, entries } = recordingLogger();
    createMaestrano(
      config(
        [
          marketplace('alpha', { x509_certificate: shared.certificate }),
          marketplace('beta', { x509_certificate: own.certificate }),
          marketplace('gamma', { enabled: false, x509_certificate: shared.certificate }),
        ],
        logger,
      ),
    );
    expect(entries.filter((e) => e.level === 'warn')).toEqual([]);
  });

  describe('a developer-platform refresh', () => {
    let documents: MarketplaceInput[][];
    let server: Server;
    let host: string;
    beforeAll(async () => {
      server = createServer((_req, res) => {
        res.setHeader('content-type', 'application/json');
        res.setHeader('connection', 'close');
        res.end(JSON.stringify({ marketplaces: documents.shift() }));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      host = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('warns for a pair it brings, once, and not for the first load (createMaestrano logs that one)', async () => {
      const alpha = marketplace('alpha', { x509_certificate: shared.certificate });
      documents = [
        [alpha, marketplace('beta', { x509_certificate: shared.certificate })],
        [alpha, marketplace('beta', { x509_certificate: shared.certificate }), marketplace('gamma', { x509_certificate: own.certificate })],
        [alpha, marketplace('beta', { x509_certificate: shared.certificate }), marketplace('gamma', { x509_certificate: shared.certificate })],
        [alpha, marketplace('beta', { x509_certificate: shared.certificate }), marketplace('gamma', { x509_certificate: shared.certificate })],
      ];
      const { logger, entries } = recordingLogger();
      const tenants = await tenantsFromDevPlatform({ host, key: 'k', secret: 's', refreshMs: 0, logger });
      expect(sharedWarnings(entries)).toEqual([]);
      createMaestrano(config(tenants, logger));
      expect(sharedWarnings(entries).map((w) => w.fields)).toEqual([{ fingerprint: SHARED_FINGERPRINT, marketplaces: ['alpha', 'beta'] }]);

      await tenants.refresh(); // gamma arrives with its own certificate: nothing new
      expect(sharedWarnings(entries)).toHaveLength(1);
      await tenants.refresh(); // gamma now trusts alpha's and beta's
      expect(sharedWarnings(entries).map((w) => w.fields)).toEqual([
        { fingerprint: SHARED_FINGERPRINT, marketplaces: ['alpha', 'beta'] },
        { fingerprint: SHARED_FINGERPRINT, marketplaces: ['alpha', 'beta', 'gamma'] },
      ]);
      await tenants.refresh(); // unchanged: not repeated
      expect(sharedWarnings(entries)).toHaveLength(2);
      expect(tenants.list().map((t) => t.name)).toEqual(['alpha', 'beta', 'gamma']);
      tenants.close();
    });

    it('a refresh listing the same marketplaces in another order brings no new pair: not repeated', async () => {
      const alpha = marketplace('alpha', { x509_certificate: shared.certificate });
      const beta = marketplace('beta', { x509_certificate: shared.certificate });
      documents = [[alpha, beta], [beta, alpha], [alpha, beta]];
      const { logger, entries } = recordingLogger();
      const tenants = await tenantsFromDevPlatform({ host, key: 'k', secret: 's', refreshMs: 0, logger });
      createMaestrano(config(tenants, logger));
      expect(sharedWarnings(entries)).toHaveLength(1);
      await tenants.refresh();
      await tenants.refresh();
      expect(sharedWarnings(entries)).toHaveLength(1);
      tenants.close();
    });
  });
});
