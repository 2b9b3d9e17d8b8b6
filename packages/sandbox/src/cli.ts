import { parseArgs } from 'node:util';
import { startSandbox } from './index.js';

const usage = `Usage: maestrano-sandbox [--port 4000] [--host 127.0.0.1] [--app-url http://localhost:3000]
                         [--seed <records>] [--data file.sqlite] [--marketplaces a,b]
                         [--notify-delay-ms 50] [--retry-base-ms 1000]`;

function fail(message: string): never {
  process.stderr.write(`maestrano-sandbox: ${message}\n${usage}\n`);
  process.exit(2);
}

function intOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) fail(`--${name} must be a non-negative integer`);
  return Number(value);
}

async function main(): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'app-url': { type: 'string' },
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
  const seed = intOption(str('seed'), 'seed');
  const notifyDelayMs = intOption(str('notify-delay-ms'), 'notify-delay-ms');
  const retryBaseMs = intOption(str('retry-base-ms'), 'retry-base-ms');
  const marketplaces = str('marketplaces')
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const dataFile = str('data');
  const host = str('host');
  const started = Date.now();
  const sandbox = await startSandbox({
    port,
    appUrl: str('app-url') ?? 'http://localhost:3000',
    ...(host ? { host } : {}),
    ...(seed !== undefined ? { seed } : {}),
    ...(marketplaces && marketplaces.length > 0 ? { marketplaces } : {}),
    ...(dataFile ? { dataFile } : {}),
    ...(notifyDelayMs !== undefined ? { notifyDelayMs } : {}),
    ...(retryBaseMs !== undefined ? { retryBaseMs } : {}),
  });
  const lines = [
    `Maestrano sandbox listening on ${sandbox.url} (ready in ${Date.now() - started} ms)`,
    `  Web UI:            ${sandbox.url}/`,
    `  Dev platform:      ${sandbox.marketplacesUrl}`,
    `  Environment key:   ${sandbox.credentials.environment.apiKey}`,
    `  Environment secret:${' '}${sandbox.credentials.environment.apiSecret}`,
    `  IdP:               ${sandbox.url}/api/v1/auth/saml`,
    `  Account API:       ${sandbox.url}/api/v1/account/`,
    `  Connec!:           ${sandbox.url}/api/v2   (batch: ${sandbox.url}/batch)`,
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
