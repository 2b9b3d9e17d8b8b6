// A response the ACS refuses as `in_response_to` says which of the usual causes it is: no
// binding cookie (the start and the ACS are not the same site), a cookie this app did not sign,
// an expired login, or a cookie holding other logins only. The log carries it (the browser's
// answer keeps its fixed message); it names the cookie, never a value.
import type { TestUser } from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100' };
let h: Harness;
let now = Date.now();
const warnings: { message: string; fields: Record<string, unknown> }[] = [];

beforeAll(async () => {
  h = await startHarness({
    clock: () => new Date(now),
    // A binding shorter than the assertion's own validity, so that it is what expires.
    sso: { requestBinding: { ttlMs: 60_000 } },
    logger: { debug() {}, info() {}, warn: (message, fields) => warnings.push({ message, fields: fields ?? {} }), error() {} },
  });
});
afterAll(() => h.close());

/** Posts a refused response; answers what the log says of its cause. */
async function refusal(samlResponse: string, cookie?: string): Promise<string> {
  warnings.length = 0;
  const answer = await h.post(samlResponse, cookie === undefined ? {} : { cookie });
  expect(answer.status).toBe(400);
  expect(answer.body).toEqual({ error: 'in_response_to', message: 'The SAML response does not answer a login started in this browser' });
  expect(warnings).toHaveLength(1);
  expect(warnings[0]?.message).toBe('maestrano: SSO failed');
  expect(warnings[0]?.fields['reason']).toBe('in_response_to');
  return String(warnings[0]?.fields['cause']);
}

describe('in_response_to refusals say why', () => {
  it('no binding cookie, a foreign one, another login only, an expired login', async () => {
    const started = await h.init();
    const cookieName = started.cookie.split('=')[0];
    expect(cookieName).toBe('mno_sso_req_maestrano-test');
    const { samlResponse, request } = h.idp.respondTo(started.location, alice);

    expect(await refusal(samlResponse)).toBe(
      `Error: InResponseTo is not bound to this browser: the post carried no ${cookieName} cookie: the browser did not send the one the SSO start set (the start and the ACS must be the same site and scheme; a login started in another browser, or a cookie dropped by the browser or a proxy)`,
    );
    const forged = `${cookieName}=${Buffer.from(JSON.stringify([[request.id, now + 60_000]])).toString('base64url')}.AAAA`;
    expect(await refusal(samlResponse, forged)).toMatch(new RegExp(`: the ${cookieName} cookie is not one this app signed `));
    const other = await h.init();
    expect(await refusal(samlResponse, other.cookie)).toMatch(new RegExp(`: the ${cookieName} cookie holds other logins of this browser, not this one`));
    const expiredLogin = await h.init();
    const late = h.idp.respondTo(expiredLogin.location, alice);
    now += 90_000;
    expect(await refusal(late.samlResponse, expiredLogin.cookie)).toMatch(/: the login started more than 1 min ago and its binding expired: start it again$/);
  });
});
