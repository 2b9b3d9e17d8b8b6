/** Where the tenants (marketplaces) come from, and how one deployment serves all of them. */
import {
  configFromEnv,
  consoleLogger,
  type DevPlatformTenants,
  type Maestrano,
  MutableTenantRegistry,
  parseMarketplacesDocument,
  type TenantRegistry,
  tenantsFromDevPlatform,
  tenantsFromFile,
} from '@org/maestrano-sdk';

// #region file
// The developer platform's `{"marketplaces":[…]}` document, saved as a file.
export function tenantsFromConfigFile(): Promise<TenantRegistry> {
  return tenantsFromFile(process.env.MAESTRANO_CONFIG ?? 'maestrano.json');
}
// #endregion file

// #region file-reload
export async function tenantsReloadedOnHangup() {
  const tenants = await tenantsFromFile('maestrano.json', { logger: consoleLogger() });
  process.on('SIGHUP', () => {
    tenants.reload().catch((error) => console.error('tenants not reloaded:', error.message));
  });
  return tenants;
}
// #endregion file-reload

// #region dev-platform
// Live from the developer platform (MNO_DEVPL_ENV_KEY and MNO_DEVPL_ENV_SECRET required;
// MNO_DEVPL_HOST defaults to the production platform, https://developer.maestrano.com, and
// MNO_DEVPL_API_PATH to /api/config/v1): refreshed every hour, cached to disk (mode 0600) for
// outages. The logger gets one line with the host and path used (never the key or secret).
export function tenantsFromEnvironment(): Promise<DevPlatformTenants> {
  const platform = configFromEnv(process.env, { logger: consoleLogger() });
  return tenantsFromDevPlatform({ ...platform, cacheFile: '.data/marketplaces.json', refreshMs: 60 * 60 * 1000 });
}
// #endregion dev-platform

// #region mutable
// Your own source (a secrets manager, a database): swap the whole set at run time.
export function tenantsFromSecrets(document: unknown): MutableTenantRegistry {
  const registry = new MutableTenantRegistry(parseMarketplacesDocument(document, 'secrets'));
  // later, on rotation: registry.replace(parseMarketplacesDocument(next, 'secrets'));
  return registry;
}
// #endregion mutable

// #region per-tenant
// Everything is addressed by tenant name: routes end with it, API clients take it.
export async function describeTenants(mno: Maestrano): Promise<string[]> {
  const lines: string[] = [];
  for (const tenant of mno.tenants.list()) {
    const groups = await mno.account(tenant.name).groups.list();
    lines.push(`${tenant.name}: SSO starts at ${mno.sso.initUrl(tenant.name)}, ${groups.length} groups have the app`);
  }
  return lines;
}
// #endregion per-tenant
