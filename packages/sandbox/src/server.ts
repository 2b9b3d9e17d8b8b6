import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { envelope, handleAccountApi, handleDevPlatform, SYSTEM_ERROR } from './account.js';
import { ADMIN_PREFIX, handleAdmin } from './admin.js';
import { crossSiteGuard } from './cross-site.js';
import { SandboxAdmin } from './admin-client.js';
import { ConnecError, connecErrorBody } from './connec/records.js';
import { handleConnec } from './connec/api.js';
import { FaultInjector } from './faults.js';
import { json, type SandboxRequest, type SandboxResponse, text } from './http.js';
import { handleIdp, IdpSessions } from './idp.js';
import { Platform } from './platform.js';
import { type SeedOptions, type SeedSummary, seedData } from './seed.js';
import { Store } from './store.js';
import type { FaultRule } from './types.js';
import { handleUi } from './ui.js';

export interface SandboxOptions {
  /** Port to listen on; 0 (the default) picks a free ephemeral port. */
  port?: number;
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  /** Public base URL of the app (PROTOCOL `app.host`), e.g. http://127.0.0.1:3000. */
  appUrl: string;
  /**
   * Base URL the sandbox advertises for itself (developer-platform documents, IdP, Connec!
   * `pagination.next`) when it is reached through another host name or a proxy; default
   * http://host:port.
   */
  publicUrl?: string;
  /** Seed a deterministic data set of about this many Connec! records (only into an empty store). */
  seed?: number | SeedOptions;
  /** Marketplace (tenant) names; default `['sandbox']`. */
  marketplaces?: string[];
  /** A single marketplace name (shorthand for `marketplaces: [name]`). */
  marketplace?: string;
  /** SQLite file that keeps the state (certificates included) across restarts. */
  dataFile?: string;
  /** Coalescing delay of Connec! notifications (ms, default 50). */
  notifyDelayMs?: number;
  /** First retry delay of failed deliveries, doubled each attempt (ms, default 1000). */
  retryBaseMs?: number;
  /** Attempts per delivery before it is marked failed (default 6). */
  maxDeliveryAttempts?: number;
  /** Timeout of one delivery attempt (ms, default 10000). */
  deliveryTimeoutMs?: number;
  /**
   * `webhooks.connec.external_ids` of every marketplace (default true): whether Connec!
   * notifications carry id-map arrays or plain ids.
   */
  externalIds?: boolean;
  /**
   * Largest request body accepted, in bytes (default 16 MiB); a larger one is answered 413, as
   * a proxy in front of Connec! does. Lower it to exercise an app's handling of 413.
   */
  maxBodyBytes?: number;
  /** Fixed developer-platform environment credentials (generated otherwise). */
  environment?: { apiKey: string; apiSecret: string };
}

export interface SandboxCredentials {
  environment: { apiKey: string; apiSecret: string };
  marketplaces: Array<{ name: string; apiId: string; apiKey: string; fingerprint: string; certificate: string }>;
}

export interface Sandbox {
  /** Base URL, e.g. http://127.0.0.1:41234 (IdP, Account API and Connec! host): `publicUrl` when given. */
  url: string;
  /** The address it listens on, http://host:port (equal to `url` without `publicUrl`). */
  listenUrl: string;
  /** The developer-platform document URL: `${url}/api/config/v1/marketplaces`. */
  marketplacesUrl: string;
  credentials: SandboxCredentials;
  admin: SandboxAdmin;
  /** The summary of the seeding done at start, if any. */
  seeded: SeedSummary | null;
  stop(): Promise<void>;
}

/** Default largest request body accepted (bytes); larger bodies are answered 413. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

class BodyTooLargeError extends Error {}

async function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += buf.length;
    if (size > maxBytes) throw new BodyTooLargeError();
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function faultResponse(rule: FaultRule, path: string): SandboxResponse {
  const status = rule.kind === 'rate-limit' ? 429 : (rule.status ?? 500);
  const headers: Record<string, string> = {};
  if (rule.kind === 'rate-limit') headers['retry-after'] = String(rule.retryAfterSeconds ?? 1);
  if (path.startsWith('/api/v1/account') || path === '/api/v1/ping') {
    return { ...envelope(status, {}, status >= 500 ? SYSTEM_ERROR : { rate_limit: ['Too many requests'] }), headers: { ...envelope(status, {}).headers, ...headers } };
  }
  const err =
    status === 429
      ? new ConnecError(429, 'too-many-requests', 'Too many requests', 'Rate limit exceeded')
      : new ConnecError(status, status >= 500 ? 'internal-server-error' : 'fault', status >= 500 ? 'Internal server error' : 'Injected fault', 'Injected fault');
  return json(status, connecErrorBody(err), headers);
}

function send(res: ServerResponse, r: SandboxResponse, truncate: boolean): void {
  const body = Buffer.from(r.body, 'utf8');
  if (truncate) {
    const cut = body.subarray(0, Math.max(1, Math.floor(body.length / 2)));
    res.writeHead(r.status, { ...r.headers, 'content-length': String(cut.length) });
    res.end(cut);
    return;
  }
  res.writeHead(r.status, { ...r.headers, 'content-length': String(body.length) });
  res.end(body);
}

/** Starts a local Maestrano platform (dev platform, IdP, Account API, Connec!, webhooks, UI). */
export async function startSandbox(options: SandboxOptions): Promise<Sandbox> {
  if (!options || typeof options.appUrl !== 'string') throw new TypeError('startSandbox: appUrl is required');
  let appUrl: string;
  try {
    appUrl = new URL(options.appUrl).toString().replace(/\/$/, '');
  } catch {
    throw new TypeError(`startSandbox: appUrl is not a URL: ${options.appUrl}`);
  }
  const maxBodyBytes = options.maxBodyBytes ?? MAX_BODY_BYTES;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1) {
    throw new TypeError(`startSandbox: maxBodyBytes must be a positive integer, got ${String(options.maxBodyBytes)}`);
  }
  const store = new Store(options.dataFile);
  const platform = new Platform(store, {
    appUrl,
    notifyDelayMs: options.notifyDelayMs ?? 50,
    retryBaseMs: options.retryBaseMs ?? 1000,
    maxDeliveryAttempts: options.maxDeliveryAttempts ?? 6,
    deliveryTimeoutMs: options.deliveryTimeoutMs ?? 10_000,
  });
  const faults = new FaultInjector();
  platform.faults = faults;
  const sessions = new IdpSessions();
  platform.idpSessions = sessions;
  try {
    platform.ensureEnvironment(options.environment);
    const names = options.marketplaces ?? (options.marketplace ? [options.marketplace] : store.marketplaces.size > 0 ? [] : ['sandbox']);
    platform.ensureMarketplaces(names);
    if (options.externalIds !== undefined) {
      for (const m of store.marketplaces.values()) store.putMarketplace({ ...m, externalIds: options.externalIds });
    }
  } catch (e) {
    store.close();
    throw e;
  }

  // Aborted by stop(): ends the injected latency sleeps still running.
  const stopping = new AbortController();
  const faultSleep = (ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      if (stopping.signal.aborted) {
        resolve(false);
        return;
      }
      const onStop = () => {
        clearTimeout(timer);
        resolve(false);
      };
      const timer = setTimeout(() => {
        stopping.signal.removeEventListener('abort', onStop);
        resolve(true);
      }, ms);
      stopping.signal.addEventListener('abort', onStop, { once: true });
    });

  const bind = options.host ?? '127.0.0.1';
  const publicUrl = options.publicUrl && URL.canParse(options.publicUrl) ? new URL(options.publicUrl) : null;
  const guard = crossSiteGuard({
    loopback: bind === 'localhost' || bind === '::1' || /^127\./.test(bind),
    hosts: [bind.includes(':') ? `[${bind}]` : bind, ...(publicUrl ? [publicUrl.hostname] : [])],
    origins: publicUrl ? [publicUrl.host] : [],
  });
  const dispatch = async (req: SandboxRequest): Promise<SandboxResponse> => {
    const refused = guard(req);
    if (refused) return refused;
    const admin = await handleAdmin(platform, req);
    if (admin) return admin;
    return (
      handleDevPlatform(platform, req) ??
      handleIdp(platform, sessions, req) ??
      handleAccountApi(platform, req) ??
      handleConnec(platform, req) ??
      (await handleUi(platform, req)) ??
      text(404, 'Not found')
    );
  };

  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      try {
        const body = await readBody(req, maxBodyBytes);
        const url = new URL(req.url ?? '/', platform.url || 'http://127.0.0.1');
        const request: SandboxRequest = { method: (req.method ?? 'GET').toUpperCase(), url, headers: req.headers, body };
        let truncate = false;
        if (!path.startsWith(ADMIN_PREFIX)) {
          const rule = faults.match(request.method, path);
          if (rule) {
            if (rule.kind === 'latency') {
              if (!(await faultSleep(rule.latencyMs ?? 0))) {
                req.socket.destroy();
                return;
              }
            } else if (rule.kind === 'drop') {
              req.socket.destroy();
              return;
            } else if (rule.kind === 'truncate') truncate = true;
            else {
              send(res, faultResponse(rule, path), false);
              return;
            }
          }
        }
        send(res, await dispatch(request), truncate);
      } catch (e) {
        if (e instanceof BodyTooLargeError) {
          res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' });
          res.end('Request body too large');
          return;
        }
        if (res.headersSent) {
          res.destroy();
          return;
        }
        if (path.startsWith('/api/v1/')) send(res, envelope(500, {}, SYSTEM_ERROR), false);
        else send(res, json(500, connecErrorBody(new ConnecError(500, 'internal-server-error', 'Internal server error', 'Internal server error'))), false);
      }
    })();
  });
  // Keep idle connections open like a production front end would (nginx keeps them 75 s).
  // Clients such as undici drop a connection a second or two before the advertised timeout,
  // so a short one (this was 1 s) made every request open a new TCP connection; stop()
  // closes whatever is still open.
  server.keepAliveTimeout = 30_000;
  const host = options.host ?? '127.0.0.1';
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    platform.notifier.stop();
    store.close();
    throw e;
  }
  const address = server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  const listenUrl = `http://${urlHost}:${address.port}`;
  platform.url = (options.publicUrl ?? listenUrl).replace(/\/$/, '');

  let seeded: SeedSummary | null = null;
  if (options.seed !== undefined && store.groups.size === 0) {
    seeded = seedData(platform, typeof options.seed === 'number' ? { records: options.seed } : options.seed);
  }

  const env = store.environment;
  if (!env) throw new Error('environment credentials missing');
  const credentials: SandboxCredentials = {
    environment: { apiKey: env.apiKey, apiSecret: env.apiSecret },
    marketplaces: [...store.marketplaces.values()].map((m) => ({ name: m.name, apiId: m.apiId, apiKey: m.apiKey, fingerprint: m.fingerprint, certificate: m.certificatePem })),
  };
  let stopped = false;
  return {
    url: platform.url,
    listenUrl,
    marketplacesUrl: `${platform.url}/api/config/v1/marketplaces`,
    credentials,
    admin: new SandboxAdmin(listenUrl),
    seeded,
    async stop() {
      if (stopped) return;
      stopped = true;
      stopping.abort();
      platform.notifier.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      store.close();
    },
  };
}
