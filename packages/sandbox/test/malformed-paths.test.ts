import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../src/index.js';
import { basic } from './helpers.js';

interface RawAnswer {
  status: number;
  type: string;
  body: string;
}

/** Path segments no decoder accepts: a bad hex escape and a UTF-8 sequence cut short. */
const BAD = ['%zz', '%E0%A4%A'];

describe('malformed percent-encoding in URL paths', () => {
  let sb: Sandbox;
  let auth: string;

  /** Sends `path` as is (fetch and URL would normalise it), returns status, content type and body. */
  const raw = (method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<RawAnswer> =>
    new Promise((resolve, reject) => {
      const url = new URL(sb.listenUrl);
      const req = request({ host: url.hostname, port: url.port, path, method, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body: text }));
      });
      req.on('error', reject);
      req.end(body);
    });

  beforeAll(async () => {
    sb = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:3000', seed: 20 });
    const m = sb.credentials.marketplaces[0];
    if (!m) throw new Error('no marketplace');
    auth = basic(m.apiId, m.apiKey);
  });
  afterAll(async () => {
    await sb?.stop();
  });

  const connec400 = (answer: RawAnswer) => {
    expect(answer.status).toBe(400);
    expect(answer.type).toContain('application/json');
    const body = JSON.parse(answer.body) as { errors: Array<Record<string, string>> };
    expect(body.errors[0]).toMatchObject({ status: '400', code: 'bad-request', title: 'Bad request', detail: 'Malformed percent-encoding in the URL' });
  };

  it('Connec! answers a malformed /api/v2 or report path with its JSON:API 400, not a 500', async () => {
    for (const bad of BAD) {
      connec400(await raw('GET', `/api/v2/${bad}/people`, { authorization: auth }));
      connec400(await raw('GET', `/api/v2/cld-sbx1/${bad}`, { authorization: auth }));
      connec400(await raw('PUT', `/api/v2/cld-sbx1/people/${bad}`, { authorization: auth, 'content-type': 'application/json' }, '{"people":{}}'));
      connec400(await raw('GET', `/api/v2/json_schema/${bad}`));
      connec400(await raw('GET', `/api/reports/${bad}/accounts_summary`, { authorization: auth }));
    }
    // A well-formed path still works, and so does a batch op naming a malformed path (400 in its result).
    expect((await raw('GET', '/api/v2/cld-sbx1/people?$top=1', { authorization: auth })).status).toBe(200);
    const batch = await raw(
      'POST',
      '/batch',
      { authorization: auth, 'content-type': 'application/json' },
      JSON.stringify({ ops: [{ method: 'get', url: '/api/v2/cld-sbx1/%zz' }, { method: 'get', url: '/api/v2/cld-sbx1/people?$top=1' }] }),
    );
    expect(batch.status).toBe(200);
    const results = (JSON.parse(batch.body) as { results: Array<{ status: number; body: { errors?: Array<{ code: string }> } }> }).results;
    expect(results.map((r) => r.status)).toEqual([400, 200]);
    expect(results[0]?.body.errors?.[0]?.code).toBe('bad-request');
  });

  it('Account API checks the credentials first (401), then answers a malformed path with a 400 envelope', async () => {
    for (const bad of BAD) {
      const anonymous = await raw('GET', `/api/v1/account/groups/${bad}`);
      expect(anonymous.status).toBe(401);
      expect(JSON.parse(anonymous.body)).toMatchObject({ success: false, errors: { authentication: ['Invalid API token'] } });
      for (const path of [`/api/v1/account/groups/${bad}`, `/api/v1/account/${bad}`, `/api/v1/account/bills/${bad}`]) {
        const answer = await raw('GET', path, { authorization: auth });
        expect(answer.status).toBe(400);
        expect(answer.type).toContain('application/json');
        expect(JSON.parse(answer.body)).toEqual({ success: false, errors: { path: ['Malformed percent-encoding in the URL'] }, data: {} });
      }
    }
  });

  it('the IdP answers a malformed session-check or launch path with an HTML 400 page', async () => {
    for (const bad of BAD) {
      for (const path of [`/api/v1/auth/saml/${bad}?session=x`, `/launch/${bad}`]) {
        const answer = await raw('GET', path);
        expect(answer.status).toBe(400);
        expect(answer.type).toContain('text/html');
        expect(answer.body).toContain('<title>');
        expect(answer.body).toContain('Malformed percent-encoding in the URL.');
      }
    }
    // Well-formed: still a JSON answer and a redirect.
    expect((await raw('GET', '/api/v1/auth/saml/usr-x?session=x')).status).toBe(200);
    expect((await raw('GET', '/launch/cld-sbx1')).status).toBe(302);
  });

  it('the admin API and the web UI keep their 400 for a malformed path', async () => {
    const admin = await raw('GET', '/__admin/groups/%zz');
    expect(admin.status).toBe(400);
    expect(admin.body).toContain('Malformed percent-encoding in the URL');
    const ui = await raw('GET', '/ui/groups/%E0%A4%A');
    expect(ui.status).toBe(400);
    expect(ui.type).toContain('text/html');
    expect(ui.body).toContain('Malformed percent-encoding in the URL.');
  });
});
