import { readFile } from 'node:fs/promises';
import type { TenantRegistry } from '../core/types.js';
import { ConfigError } from '../errors/index.js';
import { parseMarketplacesDocument } from '../config/tenant.js';
import { staticTenants } from './registry.js';

/**
 * Loads tenants from a dev-platform `{marketplaces:[...]}` JSON file (the same document
 * `tenantsFromDevPlatform` downloads). A missing file, invalid JSON or an invalid document
 * is a `ConfigError` naming the file and the bad keys, never echoing a secret; so is a document
 * that lists no marketplaces.
 */
export async function tenantsFromFile(path: string): Promise<TenantRegistry> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    // The reason in the message too (ENOENT: no such file or directory, EACCES, EISDIR): many
    // loggers print only the message. Node's message already starts with the code.
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new ConfigError(`Cannot read the tenants file ${path}: ${reason}`, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ConfigError(`The tenants file ${path} is not valid JSON`);
  }
  const tenants = parseMarketplacesDocument(json, path);
  // A fixed registry with no marketplace would answer 404 on every route for the life of the
  // process (as `createMaestrano({ tenants: [] })` and `tenantsFromDevPlatform` refuse it).
  if (tenants.length === 0) {
    throw new ConfigError(`The tenants file ${path} lists no marketplaces`, {
      issues: [{ path: 'marketplaces', message: 'must list at least one marketplace' }],
    });
  }
  return staticTenants(tenants);
}
