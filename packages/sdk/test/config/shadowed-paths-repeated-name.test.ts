// The check for copied paths (indexed since 61f4cda) compares a path with the routes of every
// marketplace of a name, not only the last one listed under it: a repeated name is an issue of
// its own, and each marketplace's paths are still checked.
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { describe, expect, it } from 'vitest';
import { tenantsOrIssues } from '../../src/config/tenant.js';

const { certificate } = createTestCertificate({ bits: 1024 });

describe('the copied-path check', () => {
  it('checks paths against every marketplace of a repeated name, not only the last one', () => {
    const marketplace = (name: string, init: string) => ({
      marketplace: name,
      app: { host: 'https://app.example.com' },
      api: { id: `app-${name}`, key: `key-${name}`, host: 'https://hub.example.com' },
      sso: { x509_certificate: certificate, init_path: init },
    });
    // `acme` twice (its own issue); `beta`'s path ends with `acme` and is the first acme's route.
    const { issues } = tenantsOrIssues([marketplace('acme', '/sso/acme'), marketplace('acme', '/other/init/acme'), marketplace('beta', '/sso/acme')], 'marketplaces');
    expect(issues.map((issue) => issue.path)).toEqual(['marketplaces[1].marketplace', 'marketplaces[2].sso.init_path']);
    expect(issues[1]!.message).toContain('ends with the name of marketplace "acme"');
  });
});
