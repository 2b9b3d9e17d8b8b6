import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { maestranoAttributes } from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./fixtures/pysaml2_idp.py', import.meta.url));

async function pysaml2Available(): Promise<string | null> {
  if (!existsSync(PYTHON)) return `${PYTHON} is missing`;
  if (!existsSync('/usr/bin/xmlsec1')) return '/usr/bin/xmlsec1 is missing (Debian xmlsec1)';
  try {
    await run(PYTHON, ['-c', 'import saml2.server']);
    return null;
  } catch {
    return 'python3-pysaml2 is not installed';
  }
}

const missing = await pysaml2Available();
if (missing) console.warn(`[interop] pysaml2 interop tests skipped: ${missing}`);

describe.skipIf(missing !== null)('interop: responses signed by pysaml2 (an independent IdP)', () => {
  let h: Harness;
  let dir: string;

  beforeAll(async () => {
    h = await startHarness();
    dir = await mkdtemp(join(tmpdir(), 'mno-pysaml2-'));
    await writeFile(join(dir, 'idp.key'), h.idp.privateKey);
    await writeFile(join(dir, 'idp.crt'), h.idp.certificate);
    const metadata = await fetch(`${h.baseUrl}/maestrano/auth/saml/metadata/${h.tenant}`);
    await writeFile(join(dir, 'sp.xml'), await metadata.text());
  });
  afterAll(async () => {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function pysaml2Response(inResponseTo: string | null, uid: string, groupUid: string): Promise<string> {
    const request = {
      key_file: join(dir, 'idp.key'),
      cert_file: join(dir, 'idp.crt'),
      sp_metadata_file: join(dir, 'sp.xml'),
      idp_entity_id: h.idp.issuer,
      acs_url: h.acsUrl,
      sp_entity_id: 'app-test-1',
      in_response_to: inResponseTo,
      name_id: uid,
      attributes: maestranoAttributes({ uid, email: `${uid}@py.example`, groupUid, groupName: 'Py Corp', groupRole: 'Power User' }),
    };
    const file = join(dir, `req-${uid}.json`);
    await writeFile(file, JSON.stringify(request));
    const { stdout } = await run(PYTHON, [SCRIPT, file], { env: { PATH: '/usr/bin:/bin' }, maxBuffer: 1 << 20 });
    return stdout.trim();
  }

  it('accepts an SP-initiated pysaml2 response with sign_assertion=True and provisions from its attributes', async () => {
    const started = await h.init(h.tenant, '?group_id=cld-py');
    const request = h.idp.parseAuthnRequest(started.location);
    const samlResponse = await pysaml2Response(request.id, 'usr-py', 'cld-py');
    // Sanity: the document really comes from pysaml2 (its own ID scheme and signature layout).
    const xml = Buffer.from(samlResponse, 'base64').toString('utf8');
    expect(xml).toContain('SignatureValue');
    expect(xml).toContain(`InResponseTo="${request.id}"`);

    const res = await h.post(samlResponse, { cookie: started.cookie });
    expect(res.status).toBe(200);
    expect(res.body['outcome']).toMatchObject({ companyCreated: true, userCreated: true });
    const login = h.logins.at(-1)!;
    expect(login.user.profile).toMatchObject({ uid: 'usr-py', email: 'usr-py@py.example', virtualUid: 'usr-py.cld-py' });
    expect(login.group).toMatchObject({ uid: 'cld-py', name: 'Py Corp', orgUid: 'org-py', currency: 'USD' });
    expect(login.membership.role).toBe('Power User');
    expect((await h.storage.groups.get(h.tenant, 'cld-py'))?.companyId).toBe(login.company.id);
  });

  it('refuses the same pysaml2 response replayed, and one for another request', async () => {
    const started = await h.init(h.tenant, '?group_id=cld-py');
    const request = h.idp.parseAuthnRequest(started.location);
    const samlResponse = await pysaml2Response(request.id, 'usr-py2', 'cld-py');
    expect((await h.post(samlResponse, { cookie: started.cookie })).status).toBe(200);
    const replay = await h.post(samlResponse, { cookie: started.cookie });
    expect(replay.body['error']).toBe('replay');

    const unbound = await pysaml2Response('_not-a-request-of-ours', 'usr-py3', 'cld-py');
    const refused = await h.post(unbound, { cookie: started.cookie });
    expect(refused.body['error']).toBe('in_response_to');
    expect(await h.storage.users.get(h.tenant, 'usr-py3')).toBeNull();
  });
});
