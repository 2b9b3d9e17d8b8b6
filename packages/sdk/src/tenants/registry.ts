import { SHARED_IDP_CERTIFICATE_WARNING, sharedIdpCertificates } from '../config/tenant.js';
import type { Logger, Tenant, TenantRegistry } from '../core/types.js';

/** A registry whose tenant list can be swapped atomically (used by refreshing sources). */
export class MutableTenantRegistry implements TenantRegistry {
  #byName = new Map<string, Tenant>();
  #list: Tenant[] = [];

  constructor(tenants: readonly Tenant[] = []) {
    this.replace(tenants);
  }

  get(name: string): Tenant | undefined {
    return this.#byName.get(name);
  }

  list(): Tenant[] {
    return [...this.#list];
  }

  /** Replaces every tenant at once; readers see the old or the new list, never a mix. */
  replace(tenants: readonly Tenant[]): void {
    const map = new Map<string, Tenant>();
    for (const t of tenants) map.set(t.name, Object.freeze(t));
    this.#byName = map;
    this.#list = [...map.values()];
  }
}

/** A fixed registry over already resolved tenants. */
export function staticTenants(tenants: readonly Tenant[]): TenantRegistry {
  return new MutableTenantRegistry(tenants);
}

export function isTenantRegistry(value: unknown): value is TenantRegistry {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { get?: unknown }).get === 'function' &&
    typeof (value as { list?: unknown }).list === 'function'
  );
}

/**
 * Replaces `registry`'s tenants with `tenants` (a refresh or reload; not empty) and logs what
 * changed: the marketplaces added and removed (names only), IdP certificates newly shared by
 * several marketplaces, and a marketplace that seems renamed.
 */
export function replaceAndAnnounce(registry: MutableTenantRegistry, tenants: readonly Tenant[], logger: Logger): void {
  const previous = registry.list();
  const before = previous.map((t) => t.name);
  // Keyed by the set of names: a source may list the same marketplaces in another order.
  const sharedKey = (s: { fingerprint: string; marketplaces: string[] }) => `${s.fingerprint} ${[...s.marketplaces].sort().join(',')}`;
  const sharedBefore = new Set(sharedIdpCertificates(previous).map(sharedKey));
  registry.replace(tenants);
  // The first load's pairs are logged by `createMaestrano`; a refresh logs the pairs it brings.
  for (const shared of previous.length === 0 ? [] : sharedIdpCertificates(tenants)) {
    if (!sharedBefore.has(sharedKey(shared))) logger.warn(SHARED_IDP_CERTIFICATE_WARNING, shared);
  }
  const after = new Set(tenants.map((t) => t.name));
  const added = [...after].filter((name) => !before.includes(name));
  const removed = before.filter((name) => !after.has(name));
  if (added.length > 0 || removed.length > 0) logger.info('maestrano: tenants refreshed', { added, removed });
  // Everything is stored under the marketplace's name: a marketplace renamed (same app
  // credentials under a new name) starts over, and its next logins create new companies.
  for (const gone of previous.filter((t) => removed.includes(t.name))) {
    const renamed = tenants.find((t) => added.includes(t.name) && t.api.id === gone.api.id);
    if (renamed) {
      logger.warn('maestrano: a marketplace seems renamed (same api id); its companies, users and sync state stay under the old name, and logins under the new one create new companies', {
        from: gone.name,
        to: renamed.name,
      });
    }
  }
}
