import { type ConnecClient, type ConnecClientOptions, createConnecClient } from '../src/index.js';
import { TestConnecServer, type TestConnecOptions } from './server.js';

export const GROUP = 'cld-9a1b';
export const CHANNEL = 'org-f6zi';
export const APP = { provider: 'myapp', realm: 'acct-42' } as const;

export interface Harness {
  server: TestConnecServer;
  client: ConnecClient;
  makeClient(options?: Partial<ConnecClientOptions>): ConnecClient;
}

/** A loopback Connec! server and a client with fast, deterministic retries. */
export async function startHarness(
  serverOptions: TestConnecOptions = {},
  clientOptions: Partial<ConnecClientOptions> = {},
): Promise<Harness> {
  const server = await TestConnecServer.start({ groups: { [GROUP]: CHANNEL, 'cld-7777': 'org-seven' }, ...serverOptions });
  const makeClient = (options: Partial<ConnecClientOptions> = {}) =>
    createConnecClient({
      host: server.url,
      credentials: { apiId: server.apiId, apiKey: server.apiKey },
      retry: { baseDelayMs: 1, maxDelayMs: 5, jitter: false },
      ...clientOptions,
      ...options,
    });
  return { server, client: makeClient(), makeClient };
}

/** A realistic Connec! person (CONNECTORS §F scenario 2), without its id. */
export function personFields(n: number, overrides: Record<string, unknown> = {}) {
  return {
    first_name: `Jane${n}`,
    last_name: 'Doe',
    job_title: 'Engineer',
    status: 'ACTIVE',
    is_customer: true,
    email: { address: `jane${n}@x.io` },
    phone_work: { landline: '+61 2 1234' },
    address_work: { billing: { line1: '1 George St', city: 'Sydney', country: 'AU' }, billing2: {}, shipping: {} },
    ...overrides,
  };
}
