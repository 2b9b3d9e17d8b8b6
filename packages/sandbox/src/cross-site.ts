import { ADMIN_PREFIX } from './admin.js';
import type { SandboxRequest, SandboxResponse } from './http.js';
import { json, text } from './http.js';

/**
 * The admin API and the web UI have no authentication: they are for the developer's own
 * machine. What a web page the developer visits could still send them is refused:
 * - a state-changing request (not GET/HEAD) whose `Origin` is not the sandbox's own host (a
 *   form or a `fetch` with a `text/plain` body, which a browser sends cross-site without asking);
 * - while it listens on a loopback interface, a request whose `Host` names something else: a
 *   page whose name was rebound to 127.0.0.1 (DNS rebinding) would otherwise be same-origin to it.
 * HTTP clients (the admin client, curl, tests) send no `Origin` and a loopback or configured host.
 */
export function crossSiteGuard(options: { loopback: boolean; hosts: readonly string[] }) {
  const allowed = new Set(['localhost', '127.0.0.1', '[::1]', ...options.hosts.map((h) => h.toLowerCase())]);
  return (req: SandboxRequest): SandboxResponse | null => {
    const path = req.url.pathname;
    const admin = path === ADMIN_PREFIX || path.startsWith(`${ADMIN_PREFIX}/`);
    const ui = path === '/' || path === '/ui' || path.startsWith('/ui/');
    if (!admin && !ui) return null;
    const host = typeof req.headers.host === 'string' ? req.headers.host.toLowerCase() : '';
    if (options.loopback && !allowed.has(hostnameOf(host))) {
      return refuse(admin, `Host "${host}" is not this sandbox's: the admin API and the UI answer only requests addressed to localhost, 127.0.0.1 or the sandbox's public URL`);
    }
    if (req.method === 'GET' || req.method === 'HEAD') return null;
    const origin = req.headers.origin;
    if (origin === undefined) return null;
    if (originHost(String(origin)) !== host) {
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
