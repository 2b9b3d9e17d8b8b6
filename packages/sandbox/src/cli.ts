import { parseArgs } from 'node:util';
import { startSandbox } from './index.js';

const usage = `Usage: maestrano-sandbox [--port 4000] [--host 127.0.0.1] [--app-url http://127.0.0.1:3000]
                         [--public-url <url>] [--seed <records>] [--data file.sqlite]
                         [--marketplaces a,b] [--notify-delay-ms 50] [--retry-base-ms 1000]

  --port            Port to listen on (default 4000; 0 picks a free one)
  --host            Interface to bind (default 127.0.0.1)
  --app-url         Your app's base URL (default http://<sandbox host name>:3000). Keep the app
                    on the sandbox's host name: the browser drops the app's SSO request cookie on
                    the IdP's POST across host names (127.0.0.1 vs localhost)
  --public-url      The URL the sandbox advertises for itself (developer-platform documents,
                    IdP, Connec! links) when it is reached through another host name or a proxy
                    (default http://<host>:<port>)
  --seed            Seed about this many Connec! records into an empty store
  --data            SQLite file keeping the state across restarts (default: in memory); one
                    running sandbox per file: a second one on it exits with code 1
  --marketplaces    Marketplace (tenant) names, comma-separated (default sandbox); with --data,
                    added to the marketplaces the file already holds
  --notify-delay-ms Coalescing delay of Connec! notifications (default 50)
  --retry-base-ms   First retry delay of a failed delivery (default 1000)`;

function fail(message: string): never {
  process.stderr.write(`maestrano-sandbox: ${message}\n${usage}\n`);
  process.exit(2);
}

function intOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) fail(`--${name} must be a non-negative integer`);
  return Number(value);
}

function isHttpUrl(value: string): boolean {
  try {
    return /^https?:$/.test(new URL(value).protocol);
  } catch {
    return false;
  }
}

/**
 * The host name of the default app URL: the one the sandbox advertises for itself, so the app
 * and the IdP are the same site and the browser keeps the app's SSO request cookie.
 */
function defaultAppHost(bindHost: string, publicUrl: string | undefined): string {
  if (publicUrl) return new URL(publicUrl).hostname;
  // As the sandbox's own URL is derived from the bind address.
  return bindHost.includes(':') ? `[${bindHost}]` : bindHost === '0.0.0.0' ? '127.0.0.1' : bindHost;
}

async function main(): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'app-url': { type: 'string' },
        'public-url': { type: 'string' },
        seed: { type: 'string' },
        data: { type: 'string' },
        marketplaces: { type: 'string' },
        'notify-delay-ms': { type: 'string' },
        'retry-base-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
  }
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  const str = (k: string) => (typeof values[k] === 'string' ? values[k] : undefined);
  const port = intOption(str('port'), 'port') ?? 4000;
  if (port > 65535) fail('--port must be between 0 and 65535');
  const seed = intOption(str('seed'), 'seed');
  const notifyDelayMs = intOption(str('notify-delay-ms'), 'notify-delay-ms');
  const retryBaseMs = intOption(str('retry-base-ms'), 'retry-base-ms');
  const marketplaces = str('marketplaces')
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const badMarketplace = marketplaces?.find((m) => !/^[A-Za-z0-9_-]+$/.test(m));
  if (badMarketplace !== undefined) fail(`--marketplaces: invalid marketplace name '${badMarketplace}' (use letters, digits, '_' and '-')`);
  const dataFile = str('data');
  const host = str('host');
  const publicUrl = str('public-url');
  if (publicUrl !== undefined && !isHttpUrl(publicUrl)) fail('--public-url must be an http(s) URL');
  const appUrl = str('app-url') ?? `http://${defaultAppHost(host ?? '127.0.0.1', publicUrl)}:3000`;
  if (!isHttpUrl(appUrl)) fail('--app-url must be an http(s) URL');
  const started = Date.now();
  const sandbox = await startSandbox({
    port,
    appUrl,
    ...(host ? { host } : {}),
    ...(publicUrl ? { publicUrl } : {}),
    ...(seed !== undefined ? { seed } : {}),
    ...(marketplaces && marketplaces.length > 0 ? { marketplaces } : {}),
    ...(dataFile ? { dataFile } : {}),
    ...(notifyDelayMs !== undefined ? { notifyDelayMs } : {}),
    ...(retryBaseMs !== undefined ? { retryBaseMs } : {}),
  });
  const lines = [
    `Maestrano sandbox listening on ${sandbox.listenUrl} (ready in ${Date.now() - started} ms)`,
    ...(sandbox.url !== sandbox.listenUrl ? [`  Public URL:        ${sandbox.url}`] : []),
    `  App URL:           ${appUrl}`,
    `  Web UI:            ${sandbox.url}/`,
    `  Dev platform:      ${sandbox.marketplacesUrl}`,
    `  Environment key:   ${sandbox.credentials.environment.apiKey}`,
    `  Environment secret:${' '}${sandbox.credentials.environment.apiSecret}`,
    `  IdP:               ${sandbox.url}/api/v1/auth/saml`,
    `  Account API:       ${sandbox.url}/api/v1/account/`,
    `  Connec! host:      ${sandbox.url}   (API under /api/v2, batch at /batch)`,
    `  Admin API:         ${sandbox.url}/__admin/state`,
  ];
  for (const m of sandbox.credentials.marketplaces) {
    lines.push(`  Marketplace ${m.name}: api id ${m.apiId}  api key ${m.apiKey}  cert SHA-1 ${m.fingerprint}`);
  }
  if (sandbox.seeded) lines.push(`  Seeded: ${sandbox.seeded.groups} groups, ${sandbox.seeded.users} users, ${sandbox.seeded.records} Connec! records`);
  if (dataFile) lines.push(`  Data file: ${dataFile}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  const shutdown = () => {
    void sandbox.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((e: unknown) => {
  process.stderr.write(`maestrano-sandbox: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
