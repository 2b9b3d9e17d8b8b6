import { timingSafeEqual, createHash } from 'node:crypto';
import type { Tenant } from '../core/types.js';

/** Credentials from an `Authorization: Basic …` header, or null when absent/garbled. */
export function parseBasicAuth(header: string | null): { username: string; password: string } | null {
  if (!header) return null;
  const match = /^Basic\s+([A-Za-z0-9+/=._~-]+)\s*$/i.exec(header);
  if (!match) return null;
  let decoded: string;
  try {
    decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  } catch {
    return null;
  }
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Constant-time string comparison. Both sides are hashed first so neither the content
 * nor the length of the secret leaks through timing.
 */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb);
}

/**
 * True when the request carries the tenant's `api.id:api.key` as HTTP Basic credentials
 * (how Maestrano authenticates every webhook, PROTOCOL §5.3). Always compares both parts,
 * in constant time, against the tenant named by the route only.
 */
export function verifyTenantBasicAuth(request: Request, tenant: Tenant): boolean {
  const creds = parseBasicAuth(request.headers.get('authorization'));
  if (!creds) return false;
  const idOk = safeEqual(creds.username, tenant.api.id);
  const keyOk = safeEqual(creds.password, tenant.api.key);
  return idOk && keyOk;
}

/** The 401 answer Maestrano's SDKs give to bad webhook credentials (PROTOCOL §5.3). */
export function invalidCredentialsResponse(): Response {
  return Response.json(
    { error: 'Invalid credentials' },
    { status: 401, headers: { 'www-authenticate': 'Basic realm="maestrano"' } },
  );
}
