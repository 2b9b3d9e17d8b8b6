import { redactUrl } from '@org/connec-client';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { consoleLogger, redactingLogger } from '../config/logger.js';
import type { Logger, Tenant, TenantRegistry } from '../core/types.js';
import { ConfigError } from '../errors/index.js';
import { hostProblem, parseMarketplacesDocument } from '../config/tenant.js';
import { apiPathProblem } from '../config/from-env.js';
import { MutableTenantRegistry, replaceAndAnnounce } from './registry.js';
import { trimTrailingSlashes } from '../internal/text.js';
import { MAX_TIMER_MS } from '../internal/sleep.js';
import { AnswerTooLargeError, readLimitedAnswer } from '../http/body.js';

/** The most of a marketplaces document read into memory: 16 MiB (a few KiB per marketplace). */
const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;

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
  /**
   * Refresh period in ms: 0 disables refreshing, otherwise an integer from 1,000 to
   * 2,147,483,647 (about 24.8 days, the longest timer Node.js can set). Default 1 hour.
   */
  refreshMs?: number;
  /** Per-request timeout in ms (download of the whole answer), a positive integer up to 2,147,483,647. Default 15 s. */
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
  /**
   * Downloads the document now; on failure keeps the current tenants and rethrows. An empty
   * `marketplaces` list is not applied: the current tenants and the cache are kept, with a
   * warning. Refreshes never overlap: called while one is in flight, it waits for that one and
   * then downloads once more (callers arriving meanwhile share that download).
   */
  refresh(): Promise<void>;
  /** Where the current tenants came from. */
  readonly source: 'platform' | 'cache';
  /**
   * Stops the periodic refresh and aborts a refresh in flight: once closed, no refresh replaces
   * the tenants or writes the cache file, and `refresh()` resolves without downloading.
   */
  close(): void;
}

function marketplacesUrl(host: string, apiPath: string): string {
  const base = trimTrailingSlashes(host) + trimTrailingSlashes(apiPath.startsWith('/') ? apiPath : `/${apiPath}`);
  return base.endsWith('/marketplaces') ? base : `${base}/marketplaces`;
}

/** `abort`: aborts the download (the registry was closed), on top of the `timeoutMs` timeout. */
async function download(options: DevPlatformOptions, url: string, logger: Logger, abort?: AbortSignal): Promise<{ tenants: Tenant[]; raw: string }> {
  const doFetch = options.fetch ?? fetch;
  const auth = Buffer.from(`${options.key}:${options.secret}`, 'utf8').toString('base64');
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 15_000);
  let response: Response;
  try {
    response = await doFetch(url, {
      headers: { accept: 'application/json', authorization: `Basic ${auth}` },
      signal: abort ? AbortSignal.any([timeout, abort]) : timeout,
    });
  } catch (cause) {
    throw new ConfigError(`The developer platform at ${redactUrl(url)} is unreachable`, { cause });
  }
  let raw: string;
  try {
    raw = await readLimitedAnswer(response, MAX_DOCUMENT_BYTES);
  } catch (cause) {
    if (cause instanceof AnswerTooLargeError) {
      throw new ConfigError(`The developer platform at ${redactUrl(url)} answered with more than ${MAX_DOCUMENT_BYTES} bytes`, { cause });
    }
    throw new ConfigError(`The developer platform at ${redactUrl(url)} did not send its whole answer`, { cause });
  }
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


/**
 * Every problem of the options in one `ConfigError`: the key and secret (a value of only
 * spaces is missing), the host (checked like a tenant's hosts: credentials in it would be
 * printed wherever the URL is, a query or fragment would end up inside the URL; the error names
 * the problem, never the value) and the timings.
 */
function checkOptions(options: DevPlatformOptions): void {
  const issues: { path: string; message: string }[] = [];
  for (const path of ['key', 'secret'] as const) {
    const value: unknown = options[path];
    if (typeof value !== 'string' || value.trim() === '') issues.push({ path, message: 'required' });
  }
  const host = hostProblem(options.host, false);
  if (host !== null) issues.push({ path: 'host', message: host });
  // A query, fragment or full URL here silently requested another URL.
  const apiPath = options.apiPath === undefined ? null : apiPathProblem(options.apiPath);
  if (apiPath !== null) issues.push({ path: 'apiPath', message: apiPath });
  const { refreshMs, timeoutMs } = options;
  if (refreshMs !== undefined && refreshMs !== 0 && !(Number.isInteger(refreshMs) && refreshMs >= 1_000 && refreshMs <= MAX_TIMER_MS)) {
    issues.push({ path: 'refreshMs', message: `must be 0 (no refresh) or an integer number of ms from 1000 to ${MAX_TIMER_MS}` });
  }
  if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS)) {
    issues.push({ path: 'timeoutMs', message: `must be a positive integer number of ms up to ${MAX_TIMER_MS}` });
  }
  if (issues.length > 0) {
    throw new ConfigError(`Invalid tenantsFromDevPlatform options:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`, {
      issues,
    });
  }
}

/** `cancelled`: checked before each step (close() may come meanwhile); once true the file is left as it was. */
async function writeCache(file: string, raw: string, cancelled: () => boolean): Promise<void> {
  if (cancelled()) return;
  await mkdir(dirname(file), { recursive: true });
  if (cancelled()) return;
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, raw, { mode: 0o600 });
  if (cancelled()) {
    await unlink(tmp).catch(() => {});
    return;
  }
  await rename(tmp, file);
}

/**
 * Tenants from the developer platform (`GET {host}{apiPath}/marketplaces`, HTTP Basic with
 * the environment key/secret), cached to `cacheFile` and refreshed every
 * `refreshMs`. At start-up, when the platform is unreachable or failing, or answers an empty
 * `marketplaces` list, a cached document is used with a warning; without one a `ConfigError`
 * is thrown. A failed refresh, or one answering no marketplaces, keeps the current tenants (and
 * the cache) and logs a warning; an applied refresh that adds or removes tenants logs their names.
 */
export async function tenantsFromDevPlatform(options: DevPlatformOptions): Promise<DevPlatformTenants> {
  checkOptions(options);
  const logger = redactingLogger(options.logger ?? consoleLogger());
  const url = marketplacesUrl(options.host, options.apiPath ?? '/api/config/v1');
  const registry = new MutableTenantRegistry();
  let source: 'platform' | 'cache' = 'platform';
  /** Set by close(): from then on nothing replaces the tenants or writes the cache. */
  let closed = false;
  /** The downloads in flight, aborted by close(). */
  const downloads = new Set<AbortController>();

  const saveCache = async (raw: string): Promise<void> => {
    if (!options.cacheFile) return;
    try {
      await writeCache(options.cacheFile, raw, () => closed);
    } catch (cause) {
      logger.warn('maestrano: could not write the tenants cache file', { file: options.cacheFile, cause: String(cause) });
    }
  };

  /** One download, applied unless it lists no marketplaces. */
  const refreshOnce = async (): Promise<void> => {
    if (closed) return;
    const abort = new AbortController();
    downloads.add(abort);
    let result: { tenants: Tenant[]; raw: string };
    try {
      result = await download(options, url, logger, abort.signal);
    } catch (error) {
      if (closed) return; // aborted by close(): not a failure
      throw error;
    } finally {
      downloads.delete(abort);
    }
    // Closed while downloading: the answer is dropped (the tenants and the cache stay as they are).
    if (closed) return;
    const { tenants, raw } = result;
    if (tenants.length === 0) {
      // Most likely a platform-side mistake: applying it would 404 every route and overwrite the
      // cache a restart falls back on.
      logger.warn('maestrano: the developer platform returned no marketplaces, keeping the current tenants and cache', {
        source: redactUrl(url),
        tenants: registry.list().map((t) => t.name),
      });
      return;
    }
    replaceAndAnnounce(registry, tenants, logger);
    source = 'platform';
    await saveCache(raw);
  };

  // Refreshes never overlap (an older answer landing last would overwrite newer tenants and the
  // cache): at most one download runs, and at most one more waits for it.
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  const run = (): Promise<void> => {
    const current: Promise<void> = refreshOnce().finally(() => {
      if (running === current) running = undefined;
    });
    running = current;
    return current;
  };
  const refresh = (): Promise<void> => {
    if (queued) return queued;
    if (!running) return run();
    const next: Promise<void> = running
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        queued = undefined;
        return run();
      });
    queued = next;
    return next;
  };

  try {
    const { tenants, raw } = await download(options, url, logger);
    if (tenants.length === 0) {
      throw new ConfigError(`The developer platform at ${redactUrl(url)} returned no marketplaces`);
    }
    registry.replace(tenants);
    await saveCache(raw);
  } catch (error) {
    if (!options.cacheFile) throw error;
    const cacheFile = options.cacheFile;
    /** The platform's failure, and why the cache cannot stand in for it (both named, no secrets). */
    const neither = (problem: string, cacheError?: unknown): ConfigError =>
      new ConfigError(
        `${error instanceof Error ? error.message : String(error)}; the tenants cache file ${cacheFile} cannot be used instead: ${problem}`,
        { cause: error, issues: cacheError instanceof ConfigError ? cacheError.issues : [] },
      );
    let cached: string;
    try {
      cached = await readFile(cacheFile, 'utf8');
    } catch (readError) {
      const code = (readError as NodeJS.ErrnoException | undefined)?.code;
      // No cache yet (a first start): the platform's failure is the whole story.
      if (code === 'ENOENT') throw error;
      throw neither(`it cannot be read (${code ?? 'unknown error'})`);
    }
    let json: unknown;
    try {
      json = JSON.parse(cached);
    } catch {
      throw neither('it is not valid JSON');
    }
    // The cache holds what the platform served (its unknown keys were logged when fetched).
    let tenants: Tenant[];
    try {
      tenants = parseMarketplacesDocument(json, cacheFile, { allowUnknownKeys: true });
    } catch (cacheError) {
      throw neither(cacheError instanceof Error ? cacheError.message : String(cacheError), cacheError);
    }
    // An empty cache (written by an older version) is no fallback.
    if (tenants.length === 0) throw neither('it lists no marketplaces');
    registry.replace(tenants);
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
        if (closed) return;
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
      closed = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      for (const abort of downloads) abort.abort();
    },
  };
}
