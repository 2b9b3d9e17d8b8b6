/**
 * A refused response's detail may quote a value of the unverified POST (its Destination): it is
 * cut to a few hundred characters, in the error's cause and in the log line, so one large POST
 * cannot write a log line of its own size.
 */
import type { Logger, SsoError } from '@org/maestrano-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

const lines: { level: string; message: string; fields: Record<string, unknown> | undefined }[] = [];
const logger: Logger = {
  debug: () => {},
  info: (message, fields) => lines.push({ level: 'info', message, fields }),
  warn: (message, fields) => lines.push({ level: 'warn', message, fields }),
  error: (message, fields) => lines.push({ level: 'error', message, fields }),
};
const refused: SsoError[] = [];
let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    logger,
    sso: {
      onError: (error) => {
        refused.push(error);
        return new Response(`refused: ${error.reason}`, { status: error.status });
      },
    },
  });
});
afterAll(async () => {
  await h.close();
});

describe('SSO refusal details are bounded', () => {
  it('a 200,000-character Destination: refused as destination, with a detail of a few hundred characters saying how long it was', async () => {
    const destination = `https://other-app.example/${'a'.repeat(200_000)}`;
    const res = await h.login({ uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100' }, { destination });
    expect(res.status).toBe(400);
    expect(refused.map((e) => e.reason)).toEqual(['destination']);
    const cause = String((refused[0]?.cause as Error | undefined)?.message);
    expect(cause.startsWith('Destination https://other-app.example/aaa')).toBe(true);
    expect(cause.length).toBeLessThan(400);
    expect(cause).toContain(`(${'Destination '.length + destination.length} characters)`);
    const logged = lines.find((l) => l.message === 'maestrano: SSO failed');
    expect(logged?.fields).toMatchObject({ reason: 'destination' });
    expect(String(logged?.fields?.['cause']).length).toBeLessThan(400);
    expect(JSON.stringify(lines).length).toBeLessThan(5_000);
  });
});
