import { readFile } from 'node:fs/promises';
import { consoleLogger, redactingLogger } from '../config/logger.js';
import type { Logger, Tenant, TenantRegistry } from '../core/types.js';
import { ConfigError } from '../errors/index.js';
import { parseMarketplacesDocument } from '../config/tenant.js';
import { MutableTenantRegistry, replaceAndAnnounce } from './registry.js';

export interface FileTenantsOptions {
  /**
   * Receives what a `reload()` changed: marketplaces added and removed (names only), an IdP
   * certificate newly shared by several marketplaces, a marketplace that seems renamed. Default:
   * the SDK's `consoleLogger()` (JSON lines on stderr). Secret-looking fields are redacted.
   */
  logger?: Logger;
}

/** A tenant registry read from a file, which `reload()` reads again. */
export interface FileTenants extends TenantRegistry {
  /** The file the tenants are read from. */
  readonly path: string;
  /**
   * Reads the file again and replaces the tenants at once (readers see the old list or the new
   * one, never a mix): a marketplace added to the file is served without a restart, one removed
   * is answered 404. A file that cannot be read, is not valid JSON, holds an invalid document or
   * lists no marketplaces rejects with the `ConfigError` the first load throws, and the current
   * tenants stay. Reloads never overlap: one called while another runs waits for it, then reads.
   */
  reload(): Promise<void>;
}

/** Reads and validates the document; a `ConfigError` naming the file and the bad keys, never a secret. */
async function load(path: string): Promise<Tenant[]> {
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
  // A registry with no marketplace would answer 404 on every route (as `createMaestrano({
  // tenants: [] })` and `tenantsFromDevPlatform` refuse it).
  if (tenants.length === 0) {
    throw new ConfigError(`The tenants file ${path} lists no marketplaces`, {
      issues: [{ path: 'marketplaces', message: 'must list at least one marketplace' }],
    });
  }
  return tenants;
}

/**
 * Loads tenants from a dev-platform `{marketplaces:[...]}` JSON file (the same document
 * `tenantsFromDevPlatform` downloads). A missing file, invalid JSON or an invalid document
 * is a `ConfigError` naming the file and the bad keys, never echoing a secret; so is a document
 * that lists no marketplaces. The file is read once; call `reload()` to read it again (on
 * `SIGHUP`, say):
 *
 * ```ts
 * const tenants = await tenantsFromFile('maestrano.json');
 * process.on('SIGHUP', () => {
 *   tenants.reload().catch((error) => console.error('tenants not reloaded:', error.message));
 * });
 * ```
 */
export async function tenantsFromFile(path: string, options: FileTenantsOptions = {}): Promise<FileTenants> {
  const registry = new MutableTenantRegistry(await load(path));
  let logger: Logger | undefined;
  let last: Promise<void> = Promise.resolve();
  const reload = (): Promise<void> => {
    // Chained: an earlier read landing last would put back the tenants a later one replaced.
    const next = last.then(async () => {
      const tenants = await load(path);
      logger ??= redactingLogger(options.logger ?? consoleLogger());
      replaceAndAnnounce(registry, tenants, logger);
    });
    last = next.catch(() => undefined);
    return next;
  };
  return {
    path,
    get: (name) => registry.get(name),
    list: () => registry.list(),
    reload,
  };
}
