import { redactUrl } from '@org/connec-client';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { consoleLogger, redactingLogger } from '../config/logger.js';
import type { Logger, Tenant, TenantRegistry } from '../core/types.js';
import { ConfigError } from '../errors/index.js';
import { parseMarketplacesDocument } from '../config/tenant.js';
import { MutableTenantRegistry } from './registry.js';

export interface DevPlatformOptions {
  /** e.g. `https://developer.maestrano.com`. */
  host: string;
  /** e.g. `/api/config/v1` (`/marketplaces` is appended unless already there). Default `/api/config/v1`. */
  apiPath?: string;
  /** Environment API key (HTTP Basic username). */
  key: string;
  /** Environment API secret (HTTP Basic password). */
  secret: string;
  /**
   * File where the last good document is cached (written with mode 0600, it holds API
   * keys). When the platform is unreachable the cache is used, whatever its age, with a
   * logged warning.
   */
  cacheFile?: string;
  /** Refresh period in ms; 0 disables refreshing. Default 1 hour. */
  refreshMs?: number;
  /** Per-request timeout in ms. Default 15 s. */
  timeoutMs?: number;
  fetch?: typeof fetch;
  /**
   * Receives the warnings: the cache used instead of the platform, a failed refresh, unknown
   * keys in the document (names only), a cache file that could not be written. Default: the
   * SDK's `consoleLogger()` (JSON lines on stderr). Secret-looking fields are redacted either way.
   */
  logger?: Logger;
}

/** A tenant registry kept up to date from the developer platform. */
export interface DevPlatformTenants extends TenantRegistry {
  /** Downloads the document now; on failure keeps the current tenants and rethrows. */
  refresh(): Promise<void>;
  /** Where the current tenants came from. */
  readonly source: 'platform' | 'cache';
  /** Stops the periodic refresh. */
  close(): void;
}

function marketplacesUrl(host: string, apiPath: string): string {
  const base = host.replace(/\/+$/, '') + (apiPath.startsWith('/') ? apiPath : `/${apiPath}`).replace(/\/+$/, '');
  return base.endsWith('/marketplaces') ? base : `${base}/marketplaces`;
}

async function download(options: DevPlatformOptions, url: string, logger: Logger): Promise<{ tenants: Tenant[]; raw: string }> {
  const doFetch = options.fetch ?? fetch;
  const auth = Buffer.from(`${options.key}:${options.secret}`, 'utf8').toString('base64');
  let response: Response;
  try {
    response = await doFetch(url, {
      headers: { accept: 'application/json', authorization: `Basic ${auth}` },
      signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
    });
  } catch (cause) {
    throw new ConfigError(`The developer platform at ${redactUrl(url)} is unreachable`, { cause });
  }
  const raw = await response.text();
  if (response.status === 401 || response.status === 403) {
    throw new ConfigError(`The developer platform refused the environment credentials (HTTP ${response.status})`);
  }
  if (!response.ok) throw new ConfigError(`The developer platform answered HTTP ${response.status} for ${redactUrl(url)}`);
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new ConfigError(`The developer platform answered with a body that is not JSON (${redactUrl(url)})`);
  }
  // Tolerant of fields the platform adds later (logged), strict on every key it knows.
  return { tenants: parseMarketplacesDocument(json, redactUrl(url), { allowUnknownKeys: true, logger }), raw };
}

async function writeCache(file: string, raw: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, raw, { mode: 0o600 });
  await rename(tmp, file);
}

/**
 * Tenants from the developer platform (`GET {host}{apiPath}/marketplaces`, HTTP Basic with
 * the environment key/secret), cached to `cacheFile` and refreshed every
 * `refreshMs`. At start-up, when the platform is unreachable or failing, a cached document
 * is used with a warning; without one a `ConfigError` is thrown. A failed refresh keeps the
 * current tenants and logs a warning.
 */
export async function tenantsFromDevPlatform(options: DevPlatformOptions): Promise<DevPlatformTenants> {
  if (!options.key || !options.secret) {
    throw new ConfigError('tenantsFromDevPlatform needs the environment key and secret', {
      issues: [{ path: options.key ? 'secret' : 'key', message: 'required' }],
    });
  }
  const logger = redactingLogger(options.logger ?? consoleLogger());
  const url = marketplacesUrl(options.host, options.apiPath ?? '/api/config/v1');
  const registry = new MutableTenantRegistry();
  let source: 'platform' | 'cache' = 'platform';

  const refresh = async (): Promise<void> => {
    const { tenants, raw } = await download(options, url, logger);
    registry.replace(tenants);
    source = 'platform';
    if (options.cacheFile) {
      try {
        await writeCache(options.cacheFile, raw);
      } catch (cause) {
        logger.warn('maestrano: could not write the tenants cache file', { file: options.cacheFile, cause: String(cause) });
      }
    }
  };

  try {
    await refresh();
  } catch (error) {
    if (!options.cacheFile) throw error;
    let cached: string;
    try {
      cached = await readFile(options.cacheFile, 'utf8');
    } catch {
      throw error;
    }
    let json: unknown;
    try {
      json = JSON.parse(cached);
    } catch {
      throw error;
    }
    // The cache holds what the platform served (its unknown keys were logged when fetched).
    registry.replace(parseMarketplacesDocument(json, options.cacheFile, { allowUnknownKeys: true }));
    source = 'cache';
    logger.warn('maestrano: developer platform unavailable, using the cached tenants (possibly stale)', {
      file: options.cacheFile,
      reason: error instanceof Error ? error.message : String(error),
    });
  }

  const period = options.refreshMs ?? 3_600_000;
  let timer: NodeJS.Timeout | undefined;
  if (period > 0) {
    timer = setInterval(() => {
      refresh().catch((error: unknown) => {
        logger.warn('maestrano: tenants refresh failed, keeping the current tenants', {
          reason: error instanceof Error ? error.message : String(error),
        });
      });
    }, period);
    timer.unref();
  }

  return {
    get: (name) => registry.get(name),
    list: () => registry.list(),
    refresh,
    get source() {
      return source;
    },
    close: () => {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
