/**
 * Loopback Connec! for the list benchmark, run in a child process so its memory does not count
 * in the client's heap. Serves `GET /api/v2/<group>/people?$top&$skip` where the group names the
 * dataset size (`cld-n20000` -> 20,000 people), with absolute `pagination.next` URLs. Pages are
 * serialised once and cached, so both sides of the comparison pay the same, small server cost.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const AUTH = `Basic ${Buffer.from('bench-app:bench-key').toString('base64')}`;
const cache = new Map<string, string>();
const CACHE_LIMIT = 400;

function person(i: number) {
  const id = `0000${i}`.slice(-5);
  return {
    id: [
      { id: `6f1c0d2e-0000-4000-8000-0000000${id}`, provider: 'connec', realm: 'org-f6zi' },
      { id: `per-${i}`, provider: 'myapp', realm: 'acct-42' },
    ],
    code: `PE${i}`,
    status: 'ACTIVE',
    title: 'Ms',
    first_name: `Jane${i}`,
    last_name: 'Doe',
    job_title: 'Engineer',
    organization_id: [{ id: `7a2b0c1d-0000-4000-8000-0000000${id}`, provider: 'connec', realm: 'org-f6zi' }],
    is_customer: true,
    is_supplier: false,
    is_lead: false,
    email: { address: `jane${i}@example.com` },
    phone_work: { landline: '+61 2 1234 5678', mobile: '+61 400 000 000' },
    address_work: {
      billing: { line1: '1 George St', city: 'Sydney', region: 'NSW', postal_code: '2000', country: 'AU' },
      billing2: {},
      shipping: {},
    },
    group_id: 'cld-bench',
    channel_id: 'org-f6zi',
    resource_type: 'people',
    created_at: '2016-10-04T00:36:23Z',
    updated_at: '2016-10-04T00:36:23Z',
  };
}

function page(origin: string, path: string, total: number, skip: number, top: number): string {
  const key = `${total}:${skip}:${top}`;
  const cached = cache.get(key);
  if (cached) return cached;
  const people = [];
  for (let i = skip; i < Math.min(total, skip + top); i += 1) people.push(person(i));
  const pagination: Record<string, unknown> = { skip, top, total };
  if (skip + top < total) pagination.next = `${origin}${path}?%24skip=${skip + top}&%24top=${top}`;
  const body = JSON.stringify({ people, pagination });
  if (cache.size < CACHE_LIMIT) cache.set(key, body);
  return body;
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const m = /^\/api\/v2\/cld-n(\d+)\/people$/.exec(url.pathname);
  if (req.headers.authorization !== AUTH) {
    res.writeHead(401, { 'content-type': 'application/vnd.api+json' }).end('{"errors":[{"title":"Unauthorized Access"}]}');
    return;
  }
  if (!m?.[1]) {
    res.writeHead(404).end();
    return;
  }
  const total = Number(m[1]);
  const top = Number(url.searchParams.get('$top') ?? 100);
  const skip = Number(url.searchParams.get('$skip') ?? 0);
  const { port } = server.address() as AddressInfo;
  const body = page(`http://127.0.0.1:${port}`, url.pathname, total, skip, top);
  res.writeHead(200, { 'content-type': 'application/vnd.api+json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.send?.({ port });
});
process.on('disconnect', () => server.close(() => process.exit(0)));
