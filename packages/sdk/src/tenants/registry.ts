import type { Tenant, TenantRegistry } from '../core/types.js';

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
