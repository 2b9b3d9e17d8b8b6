import type { IncomingHttpHeaders } from 'node:http';

export interface SandboxRequest {
  method: string;
  url: URL;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface SandboxResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The value behind a JSON `body`, for callers inside the sandbox (the batch endpoint). */
  readonly value?: unknown;
}

/** A JSON response; `body` is serialised on first read, so a batch op that only needs `value` never pays for it. */
export function json(status: number, value: unknown, headers: Record<string, string> = {}): SandboxResponse {
  let text: string | undefined;
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
    value,
    get body() {
      text ??= JSON.stringify(value);
      return text;
    },
  };
}

export function html(status: number, body: string, headers: Record<string, string> = {}): SandboxResponse {
  return { status, headers: { 'content-type': 'text/html; charset=utf-8', ...headers }, body };
}

export function text(status: number, body: string, headers: Record<string, string> = {}): SandboxResponse {
  return { status, headers: { 'content-type': 'text/plain; charset=utf-8', ...headers }, body };
}

export function redirect(location: string, headers: Record<string, string> = {}): SandboxResponse {
  return { status: 302, headers: { location, ...headers }, body: '' };
}

/** What every API answers (in its own format) for a path holding a malformed percent-escape. */
export const MALFORMED_PATH_MESSAGE = 'Malformed percent-encoding in the URL';

/** `decodeURIComponent`, or null when `value` holds a malformed escape (`%zz`, a cut UTF-8 sequence such as `%E0%A4%A`). */
export function decodeComponent(value: string): string | null {
  try {
    return decodeURIComponent(value);
  } catch (err) {
    if (err instanceof URIError) return null;
    throw err;
  }
}

/** The non-empty `/`-separated segments of `path`, each percent-decoded; null when one of them is malformed. */
export function decodePathSegments(path: string): string[] | null {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '') continue;
    const decoded = decodeComponent(part);
    if (decoded === null) return null;
    out.push(decoded);
  }
  return out;
}

export interface BasicCredentials {
  user: string;
  password: string;
}

export function parseBasicAuth(headers: IncomingHttpHeaders): BasicCredentials | null {
  const header = headers.authorization;
  if (!header || !/^basic /i.test(header)) return null;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return null;
  return { user: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

export function basicAuthHeader(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

export function parseCookies(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const raw = part.slice(i + 1).trim();
    // A malformed escape in someone else's cookie is kept as sent, never a 500.
    out[part.slice(0, i).trim()] = decodeComponent(raw) ?? raw;
  }
  return out;
}

/** Parses `application/x-www-form-urlencoded`, including Rack-style `a[b]` keys (one level). */
function parseForm(body: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const m = /^([^[]+)\[([^\]]*)\]$/.exec(key);
    if (m?.[1] !== undefined) {
      const outer = m[1];
      const inner = m[2] ?? '';
      // `__proto__[x]=` would otherwise write into Object.prototype (read through `out.__proto__`).
      if (outer === '__proto__' || inner === '__proto__') continue;
      const current = Object.hasOwn(out, outer) ? out[outer] : undefined;
      if (inner === '') {
        const list = Array.isArray(current) ? (current as unknown[]) : [];
        list.push(value);
        out[outer] = list;
      } else {
        const obj = typeof current === 'object' && current !== null && !Array.isArray(current) ? (current as Record<string, unknown>) : {};
        obj[inner] = value;
        out[outer] = obj;
      }
    } else if (key !== '__proto__') {
      out[key] = value;
    }
  }
  return out;
}

export class BodyParseError extends Error {}

/** Reads a JSON or form body into a plain object. Throws BodyParseError on malformed input. */
export function parseBody(req: SandboxRequest): Record<string, unknown> {
  if (req.body.trim() === '') return {};
  const type = String(req.headers['content-type'] ?? '');
  if (type.includes('application/x-www-form-urlencoded')) return parseForm(req.body);
  let parsed: unknown;
  try {
    parsed = JSON.parse(req.body);
  } catch {
    throw new BodyParseError('Malformed JSON body');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new BodyParseError('The body must be a JSON object');
  return parsed as Record<string, unknown>;
}
