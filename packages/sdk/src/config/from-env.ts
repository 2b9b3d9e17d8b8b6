import type { Logger } from '../core/types.js';
import { ConfigError } from '../errors/index.js';
import type { DevPlatformOptions } from '../tenants/dev-platform.js';
import { hostProblem, lowerScheme } from './tenant.js';

/** What `configFromEnv` returns: ready for `tenantsFromDevPlatform`. */
export interface DevPlatformEnvConfig extends DevPlatformOptions {
  apiPath: string;
  /** `MNO_DEVPL_ENV_NAME`, informational (RB and .NET send it). */
  environmentName: string | null;
}

/** The production developer platform: what `MNO_DEVPL_HOST` defaults to (as in Maestrano's own SDKs). */
export const DEFAULT_DEVPL_HOST = 'https://developer.maestrano.com';
/** What `MNO_DEVPL_API_PATH` defaults to. */
export const DEFAULT_DEVPL_API_PATH = '/api/config/v1';

export interface ConfigFromEnvOptions {
  /**
   * Receives one `info` line naming the platform host, API path and environment name used, and
   * which of them are defaults (`MNO_DEVPL_HOST` unset means the production platform). Never the
   * key or the secret. Default: nothing is logged.
   */
  logger?: Logger;
}

/** An absolute URL path without whitespace, control characters, query or fragment. */
const API_PATH = /^\/[^\s\p{Cc}\p{Cf}?#]*$/u;
export const API_PATH_MESSAGE = 'must be a path such as /api/config/v1, without whitespace, query or fragment';

/** Why the developer platform's API path is unusable, or null. Without its leading `/` it is the same path. */
export function apiPathProblem(raw: string): string | null {
  if (typeof raw !== 'string') return API_PATH_MESSAGE;
  const path = raw.startsWith('/') ? raw : `/${raw}`;
  // A URL is not a path (its host belongs in the host setting).
  return /^[A-Za-z][A-Za-z0-9+.-]*:/.test(raw) || !API_PATH.test(path) ? API_PATH_MESSAGE : null;
}

/**
 * Reads the developer-platform settings from an environment map (PROTOCOL §1.4):
 * `MNO_DEVPL_HOST` (default `https://developer.maestrano.com`), `MNO_DEVPL_API_PATH`
 * (default `/api/config/v1`), `MNO_DEVPL_ENV_NAME`, `MNO_DEVPL_ENV_KEY` and
 * `MNO_DEVPL_ENV_SECRET` (both required). Without `MNO_DEVPL_HOST` it is Maestrano's production
 * platform, as in Maestrano's own SDKs: set it for UAT or a local sandbox. `MNO_DEVPL_ENV_NAME` is
 * optional and informational (returned as `environmentName`, sent by no request). Every value is trimmed first (a `.env` file with CRLF
 * line endings leaves a `\r` at the end of each value; a trailing space is easy to miss), and
 * an empty value counts as missing (the default applies, or `required`). The host is checked
 * like a tenant's hosts: an http(s) URL without credentials, query, fragment, whitespace or
 * control characters; the API path must be a path (its leading `/` may be left out, as
 * `tenantsFromDevPlatform` adds it) without whitespace, query or fragment, and not a URL. An error names each variable and its problem, never a value. The library never
 * reads `process.env` itself: pass it explicitly, `configFromEnv(process.env)`.
 */
export function configFromEnv(env: Readonly<Record<string, string | undefined>>, options: ConfigFromEnvOptions = {}): DevPlatformEnvConfig {
  const read = (name: string): string | undefined => {
    const value = env[name];
    return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
  };
  const issues: { path: string; message: string }[] = [];
  const key = read('MNO_DEVPL_ENV_KEY');
  const secret = read('MNO_DEVPL_ENV_SECRET');
  if (key === undefined) issues.push({ path: 'MNO_DEVPL_ENV_KEY', message: 'required' });
  if (secret === undefined) issues.push({ path: 'MNO_DEVPL_ENV_SECRET', message: 'required' });
  const defaults: string[] = [];
  const withDefault = (name: string, fallback: string): string => {
    const value = read(name);
    if (value !== undefined) return value;
    defaults.push(name);
    return fallback;
  };
  const host = lowerScheme(withDefault('MNO_DEVPL_HOST', DEFAULT_DEVPL_HOST));
  const problem = hostProblem(host, false);
  if (problem !== null) issues.push({ path: 'MNO_DEVPL_HOST', message: problem });
  // Without its leading `/` it is the same path (`tenantsFromDevPlatform` always added it).
  const rawApiPath = withDefault('MNO_DEVPL_API_PATH', DEFAULT_DEVPL_API_PATH);
  const apiPath = rawApiPath.startsWith('/') ? rawApiPath : `/${rawApiPath}`;
  if (apiPathProblem(rawApiPath) !== null) issues.push({ path: 'MNO_DEVPL_API_PATH', message: API_PATH_MESSAGE });
  if (issues.length > 0) {
    const lines = issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n');
    throw new ConfigError(`Invalid developer-platform environment variables:\n${lines}`, { issues });
  }
  const environmentName = read('MNO_DEVPL_ENV_NAME') ?? null;
  // What was read, never the key or the secret (the host cannot carry credentials: checked above).
  options.logger?.info('maestrano: developer platform settings from the environment', { host, apiPath, environmentName, defaults });
  return { host, apiPath, key: key!, secret: secret!, environmentName };
}
