import { ConfigError } from '../errors/index.js';
import type { DevPlatformOptions } from '../tenants/dev-platform.js';

/** What `configFromEnv` returns: ready for `tenantsFromDevPlatform`. */
export interface DevPlatformEnvConfig extends DevPlatformOptions {
  apiPath: string;
  /** `MNO_DEVPL_ENV_NAME`, informational (RB and .NET send it). */
  environmentName: string | null;
}

/**
 * Reads the developer-platform settings from an environment map (PROTOCOL §1.4):
 * `MNO_DEVPL_HOST` (default `https://developer.maestrano.com`), `MNO_DEVPL_API_PATH`
 * (default `/api/config/v1`), `MNO_DEVPL_ENV_NAME`, `MNO_DEVPL_ENV_KEY` and
 * `MNO_DEVPL_ENV_SECRET` (both required). The library never reads `process.env` itself:
 * pass it explicitly, `configFromEnv(process.env)`.
 */
export function configFromEnv(env: Readonly<Record<string, string | undefined>>): DevPlatformEnvConfig {
  const missing = ['MNO_DEVPL_ENV_KEY', 'MNO_DEVPL_ENV_SECRET'].filter((k) => !env[k]);
  if (missing.length > 0) {
    throw new ConfigError(`Missing environment variable(s): ${missing.join(', ')}`, {
      issues: missing.map((path) => ({ path, message: 'required' })),
    });
  }
  const host = env['MNO_DEVPL_HOST'] || 'https://developer.maestrano.com';
  if (!/^https?:\/\/[^\s/]+/.test(host)) {
    throw new ConfigError('MNO_DEVPL_HOST must be an http(s) URL', {
      issues: [{ path: 'MNO_DEVPL_HOST', message: 'must be an http(s) URL' }],
    });
  }
  return {
    host,
    apiPath: env['MNO_DEVPL_API_PATH'] || '/api/config/v1',
    key: env['MNO_DEVPL_ENV_KEY']!,
    secret: env['MNO_DEVPL_ENV_SECRET']!,
    environmentName: env['MNO_DEVPL_ENV_NAME'] || null,
  };
}
