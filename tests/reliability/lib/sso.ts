/**
 * An SSO target for attacks: `createMaestrano` on a throwaway PostgreSQL database (Prisma
 * adapter), served over loopback HTTP, with the e2e app's provisioning hooks. `restart()`
 * builds a new SDK instance and storage client on the same database (what a process restart
 * keeps: only what was stored).
 */
import { createMaestrano, type MaestranoConfigInput } from '@org/maestrano-sdk';
import type { LoginOptions, TestIdp, TestUser } from '@org/maestrano-sdk/testing';
import { E2eApp, postResponse, startLogin } from '../../e2e/sso/harness.js';
import { type Answer, serve } from './http.js';
import { createDatabase, type PrismaStorage, prismaStorage, type TestDatabase } from './pg.js';

export interface SsoTarget {
  appUrl: string;
  db: TestDatabase;
  app: E2eApp;
  acsUrl(tenant: string): string;
  initUrl(tenant: string, groupUid?: string): string;
  /** SP-initiated login: init -> the test IdP answers (with `options`) -> POST to the ACS with the browser cookie. */
  login(idp: TestIdp, tenant: string, user: TestUser, options?: LoginOptions): Promise<Answer>;
  /** Like `login`, but the response XML is transformed before posting. */
  loginXml(idp: TestIdp, tenant: string, user: TestUser, transform: (xml: string) => string, options?: LoginOptions): Promise<Answer>;
  post(tenant: string, samlResponse: string, cookie?: string): Promise<Answer>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startSsoTarget(options: {
  tenants: (appUrl: string) => MaestranoConfigInput['tenants'];
  sso?: MaestranoConfigInput['sso'];
  limits?: MaestranoConfigInput['limits'];
  /** The storage adapter's bound on one operation (its default when unset). */
  operationTimeoutMs?: number;
}): Promise<SsoTarget> {
  const db = await createDatabase('sso');
  const served = await serve();
  const app = new E2eApp();
  const bound = options.operationTimeoutMs === undefined ? {} : { operationTimeoutMs: options.operationTimeoutMs };
  let storage: PrismaStorage = await prismaStorage(db.url, bound);
  const build = () => {
    const mno = createMaestrano({
      tenants: options.tenants(served.url),
      storage: storage.storage,
      provisioning: app.provisioning(false),
      onLogin: (args) => Response.json({ userId: args.user.id, companyId: args.company.id, uid: args.user.profile.uid, outcome: args.outcome }),
      logger: process.env.RELIABILITY_DEBUG ? { debug() {}, info() {}, warn() {}, error: (m, f) => console.error(m, f) } : { debug() {}, info() {}, warn() {}, error() {} },
      ...(options.sso ? { sso: options.sso } : {}),
      ...(options.limits ? { limits: options.limits } : {}),
    });
    served.setHandler(mno.handler);
  };
  build();
  const acsUrl = (tenant: string) => `${served.url}/maestrano/auth/saml/consume/${tenant}`;
  const initUrl = (tenant: string, groupUid?: string) =>
    `${served.url}/maestrano/auth/saml/init/${tenant}${groupUid ? `?group_id=${encodeURIComponent(groupUid)}` : ''}`;
  const target: SsoTarget = {
    appUrl: served.url,
    db,
    app,
    acsUrl,
    initUrl,
    async login(idp, tenant, user, o = {}) {
      const started = await startLogin(initUrl(tenant, user.groupUid));
      const { samlResponse, acsUrl: acs } = idp.respondTo(started.location, user, o);
      return postResponse(acs, samlResponse, started.cookie);
    },
    async loginXml(idp, tenant, user, transform, o = {}) {
      const started = await startLogin(initUrl(tenant, user.groupUid));
      const request = idp.parseAuthnRequest(started.location);
      const xml = idp.responseXml(user, { ...o, acsUrl: request.acsUrl, inResponseTo: o.inResponseTo === undefined ? request.id : o.inResponseTo });
      return postResponse(request.acsUrl, Buffer.from(transform(xml), 'utf8').toString('base64'), started.cookie);
    },
    post: (tenant, samlResponse, cookie) => postResponse(acsUrl(tenant), samlResponse, cookie),
    async restart() {
      served.setHandler(async () => new Response(null, { status: 503 }));
      await storage.close();
      storage = await prismaStorage(db.url, { ...bound, migrateFirst: false });
      build();
    },
    async close() {
      await served.close();
      await storage.close();
      await db.drop();
    },
  };
  return target;
}
