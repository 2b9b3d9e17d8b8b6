import { isIP } from 'node:net';
import { ADMIN_PREFIX } from './admin.js';
import type { SandboxRequest, SandboxResponse } from './http.js';
import { json, text } from './http.js';

/**
 * The admin API and the web UI have no authentication: they are for the developer's own
 * machine. What a web page the developer visits could still send them is refused:
 * - a state-changing request (not GET/HEAD) whose `Origin` is not the sandbox's own host (a
 *   form or a `fetch` with a `text/plain` body, which a browser sends cross-site without asking);
 * - a request whose `Host` names something else (on a non-loopback bind, an IP literal is
 *   accepted too): a page whose name was rebound to 127.0.0.1 (DNS rebinding) would otherwise
 *   be same-origin to it.
 * HTTP clients (the admin client, curl, tests) send no `Origin` and a loopback or configured host.
 */
export function crossSiteGuard(options: { loopback: boolean; hosts: readonly string[]; origins?: readonly string[] }) {
  const allowed = new Set(['localhost', '127.0.0.1', '[::1]', ...options.hosts.map((h) => h.toLowerCase())]);
  /** Origins (`host:port`) besides the request's own Host: the public URL's, which a proxy that rewrites Host still sends. */
  const origins = new Set((options.origins ?? []).map((o) => o.toLowerCase()));
  return (req: SandboxRequest): SandboxResponse | null => {
    const path = req.url.pathname;
    const admin = path === ADMIN_PREFIX || path.startsWith(`${ADMIN_PREFIX}/`);
    // As `handleUi` matches them: trailing slashes stripped, any path starting with `/ui`.
    const uiPath = path.replace(/\/+$/, '') || '/';
    const ui = uiPath === '/' || uiPath.startsWith('/ui');
    if (!admin && !ui) return null;
    const host = typeof req.headers.host === 'string' ? req.headers.host.toLowerCase() : '';
    // A rebinding page reaches the sandbox under a name of its own, whatever interface it listens
    // on (0.0.0.0 in a container answers 127.0.0.1 as well): on any other bind, names other than
    // the configured ones are refused too, while IP literals (a LAN address) cannot be rebound.
    const name = hostnameOf(host);
    if (!allowed.has(name) && (options.loopback || isIP(name.replace(/^\[|\]$/g, '')) === 0)) {
      return refuse(admin, `Host "${host}" is not this sandbox's: the admin API and the UI answer only requests addressed to localhost, 127.0.0.1 or the sandbox's public URL`);
    }
    if (req.method === 'GET' || req.method === 'HEAD') return null;
    const origin = req.headers.origin;
    if (origin === undefined) return null;
    const from = originHost(String(origin));
    if (from !== host && (from === null || !origins.has(from))) {
      return refuse(admin, `Cross-site request refused: Origin ${JSON.stringify(String(origin))} is not this sandbox (${host})`);
    }
    return null;
  };
}

function refuse(admin: boolean, message: string): SandboxResponse {
  return admin ? json(403, { error: 'forbidden', message }) : text(403, message);
}

/** `localhost` of `localhost:4000`, `[::1]` of `[::1]:4000`. */
function hostnameOf(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.indexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}

/** `host:port` of an Origin (`null`, or one that does not parse: no host). */
function originHost(origin: string): string | null {
  try {
    const url = new URL(origin);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.host.toLowerCase() : null;
  } catch {
    return null;
  }
}
