/**
 * The billing end-to-end harness: the SDK (createMaestrano) served over loopback HTTP,
 * persisting to a throwaway PostgreSQL database through @org/maestrano-adapter-prisma, and
 * the sandbox platform (IdP, Account API, account webhooks sender) on another port.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { migrate, prismaAdapter } from '@org/maestrano-adapter-prisma';
import { type Sandbox, startSandbox } from '@org/maestrano-sandbox';
import {
  type BillingConfigInput,
  createMaestrano,
  type Maestrano,
  type StorageAdapter,
  tenantsFromDevPlatform,
  toNodeListener,
} from '@org/maestrano-sdk';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../../packages/adapter-prisma/test/generated/postgresql/client.js';
import { adminQuery, PG_SERVER_URL } from '../pg-server.js';


export interface HookLog {
  cancelCompany: string[];
  blockUser: { userId: string; companyId: string }[];
  onSeatsChanged: { companyId: string; activeSeats: number; removed: string[] }[];
}

export interface BillingHarness {
  sandbox: Sandbox;
  mno: Maestrano;
  storage: StorageAdapter;
  prisma: PrismaClient;
  databaseUrl: string;
  appUrl: string;
  tenant: string;
  hooks: HookLog;
  /** When set, the named hook throws (the app's database is "down"). */
  failing: Set<keyof HookLog>;
  close(): Promise<void>;
}


export async function startBillingHarness(billing: BillingConfigInput): Promise<BillingHarness> {
  const dbName = `mno_billing_${randomBytes(5).toString('hex')}`;
  await adminQuery(`CREATE DATABASE "${dbName}"`);
  const url = new URL(PG_SERVER_URL);
  url.pathname = `/${dbName}`;
  const databaseUrl = url.toString();
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl, max: 10 }) });
  await migrate({ prisma });
  const storage = prismaAdapter(prisma);

  let handler: ((request: Request) => Promise<Response>) | undefined;
  const server: Server = createServer((req, res) => {
    void toNodeListener((request) => handler!(request))(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const tenant = 'e2e-market';
  const sandbox = await startSandbox({ port: 0, appUrl, marketplaces: [tenant], retryBaseMs: 50, maxDeliveryAttempts: 10 });
  const tenants = await tenantsFromDevPlatform({
    host: sandbox.url,
    key: sandbox.credentials.environment.apiKey,
    secret: sandbox.credentials.environment.apiSecret,
    refreshMs: 0,
  });

  const hooks: HookLog = { cancelCompany: [], blockUser: [], onSeatsChanged: [] };
  const failing = new Set<keyof HookLog>();
  const check = (name: keyof HookLog) => {
    if (failing.has(name)) throw new Error(`${name}: app database down`);
  };
  let companies = 0;
  let users = 0;
  const mno = createMaestrano({
    tenants,
    storage,
    provisioning: {
      createCompany: () => ({ id: `company-${++companies}` }),
      createUser: () => ({ id: `user-${++users}` }),
      cancelCompany: (company) => {
        check('cancelCompany');
        hooks.cancelCompany.push(company.id);
      },
      blockUser: (user, company) => {
        check('blockUser');
        hooks.blockUser.push({ userId: user.id, companyId: company.id });
      },
      onSeatsChanged: (company, change) => {
        check('onSeatsChanged');
        hooks.onSeatsChanged.push({ companyId: company.id, activeSeats: change.activeSeats, removed: change.removed });
      },
    },
    onLogin: ({ user, company }) => Response.json({ userId: user.id, companyId: company.id }),
    sso: { allowIdpInitiated: true },
    billing,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  handler = mno.handler;

  return {
    sandbox,
    mno,
    storage,
    prisma,
    databaseUrl,
    appUrl,
    tenant,
    hooks,
    failing,
    async close() {
      await sandbox.stop();
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      await prisma.$disconnect();
      await adminQuery(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    },
  };
}

/** Logs `userId` into the app through the sandbox IdP (IdP-initiated), provisioning the group. */
export async function ssoLogin(h: BillingHarness, userId: string, groupId: string): Promise<{ status: number; body: unknown }> {
  const login = await h.sandbox.admin.ssoIdpInitiated({ userId, groupId });
  const res = await fetch(login.acsUrl, {
    method: 'POST',
    body: new URLSearchParams({ SAMLResponse: login.samlResponse }),
    redirect: 'manual',
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: res.status, body };
}

export function basicAuth(id: string, key: string): string {
  return `Basic ${Buffer.from(`${id}:${key}`).toString('base64')}`;
}
