// A document of hundreds of marketplaces on shared paths told apart by `?marketplace=<name>`:
// the check for copied paths (a path another marketplace serves too) compares each route with
// the routes it could be confused with, not with every route of every marketplace. That ran at
// start-up and at each refresh of the tenants, and grew with the square of the marketplaces
// (seconds with a thousand). Counted on a real code path: each read of a configured path's
// query iterates a `URLSearchParams`.
import { parseMarketplacesDocument } from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { configError } from './helpers.js';

const { certificate } = createTestCertificate({ bits: 1024 });
const marketplace = (i: number, query = `marketplace=mkt-${i}`) => ({
  marketplace: `mkt-${i}`,
  app: { host: 'https://app.example.com' },
  api: { id: `app-${i}`, key: `key-${i}`, host: 'https://api-hub.example.com' },
  sso: { x509_certificate: certificate, init_path: `/auth/saml/init?${query}`, consume_path: `/auth/saml/consume?${query}` },
  webhooks: { account: { group_path: `/hooks/groups/:id?${query}` } },
});

/** How many query reads parsing a document of `count` marketplaces takes. */
function queryReads(count: number): number {
  const spy = vi.spyOn(URLSearchParams.prototype, Symbol.iterator);
  try {
    const tenants = parseMarketplacesDocument({ marketplaces: Array.from({ length: count }, (_, i) => marketplace(i)) }, 'maestrano.json');
    expect(tenants).toHaveLength(count);
    return spy.mock.calls.length;
  } finally {
    spy.mockRestore();
  }
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('checking the paths of many marketplaces', () => {
  it('reads each marketplace’s paths a fixed number of times, however many marketplaces there are', () => {
    const perMarketplace = queryReads(10) / 10;
    expect(queryReads(200)).toBe(200 * perMarketplace);
  });

  it('still finds a copied path among hundreds of marketplaces', () => {
    const marketplaces = Array.from({ length: 300 }, (_, i) => marketplace(i));
    // The SSO paths of mkt-250 copied from mkt-17 (its query names mkt-17).
    marketplaces[250] = { ...marketplace(250, 'marketplace=mkt-17'), webhooks: { account: { group_path: '/hooks/groups/:id?marketplace=mkt-250' } } };
    const error = configError(() => parseMarketplacesDocument({ marketplaces }, 'maestrano.json'));
    expect(error.issues.map((i) => i.path)).toEqual(['marketplaces[250].sso.init_path', 'marketplaces[250].sso.consume_path']);
    expect(error.issues[0]!.message).toContain('marketplace "mkt-17"');
  });
});
