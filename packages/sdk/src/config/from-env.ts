import { ConfigError } from '../errors/index.js';
import type { DevPlatformOptions } from '../tenants/dev-platform.js';
import { hostProblem } from './tenant.js';

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
 * `MNO_DEVPL_ENV_SECRET` (both required; a value of only spaces counts as missing). The host
 * is checked like a tenant's hosts: an http(s) URL without credentials, query or fragment (the
 * error names the problem, never the value). The library never reads `process.env` itself:
 * pass it explicitly, `configFromEnv(process.env)`.
 */
export function configFromEnv(env: Readonly<Record<string, string | undefined>>): DevPlatformEnvConfig {
  const issues: { path: string; message: string }[] = [];
  for (const path of ['MNO_DEVPL_ENV_KEY', 'MNO_DEVPL_ENV_SECRET']) {
    if (!env[path]?.trim()) issues.push({ path, message: 'required' });
  }
  const host = env['MNO_DEVPL_HOST'] || 'https://developer.maestrano.com';
  const problem = hostProblem(host, false);
  if (problem !== null) issues.push({ path: 'MNO_DEVPL_HOST', message: problem });
  if (issues.length > 0) {
    const lines = issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n');
    throw new ConfigError(`Invalid developer-platform environment variables:\n${lines}`, { issues });
  }
  return {
    host,
    apiPath: env['MNO_DEVPL_API_PATH'] || '/api/config/v1',
    key: env['MNO_DEVPL_ENV_KEY']!,
    secret: env['MNO_DEVPL_ENV_SECRET']!,
    environmentName: env['MNO_DEVPL_ENV_NAME'] || null,
  };
}
