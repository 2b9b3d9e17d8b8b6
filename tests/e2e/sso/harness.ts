/**
 * SSO end-to-end harness: createMaestrano served over loopback HTTP, persisting to a
 * throwaway PostgreSQL database through @org/maestrano-adapter-prisma, with an in-memory
 * "app" behind the provisioning hooks. The IdP is either the SDK's test IdP or the sandbox.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { migrate, prismaAdapter } from '@org/maestrano-adapter-prisma';
import {
  type AppRecordRef,
  createMaestrano,
  type LoginArgs,
  type Maestrano,
  type MaestranoConfigInput,
  type StorageAdapter,
  toNodeListener,
} from '@org/maestrano-sdk';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../../../packages/adapter-prisma/test/generated/postgresql/client.js';
import { adminQuery, PG_SERVER_URL } from '../pg-server.js';

export { pgUnavailableReason } from '../pg-server.js';



/** The app's own records, written by the hooks. */
export class E2eApp {
  companies = new Map<string, string>();
  users = new Map<string, string>();
  calls: Record<'createCompany' | 'createUser' | 'findUserByEmail' | 'addMembership', number> = {
    createCompany: 0,
    createUser: 0,
    findUserByEmail: 0,
    addMembership: 0,
  };
  failCreateCompany = 0;
  createCompanyDelayMs = 0;
  #seq = 0;

  provisioning(withFindUserByEmail: boolean): MaestranoConfigInput['provisioning'] {
    return {
      createCompany: async (group, ctx): Promise<AppRecordRef> => {
        this.calls.createCompany++;
        if (this.createCompanyDelayMs) await new Promise((r) => setTimeout(r, this.createCompanyDelayMs));
        if (this.failCreateCompany > 0) {
          this.failCreateCompany--;
          throw new Error('app database down');
        }
        for (const [id, key] of this.companies) if (key === ctx.idempotencyKey) return { id };
        const id = `company-${++this.#seq}-${group.uid}`;
        this.companies.set(id, ctx.idempotencyKey);
        return { id };
      },
      createUser: async (user): Promise<AppRecordRef> => {
        this.calls.createUser++;
        const id = `user-${++this.#seq}`;
        this.users.set(id, user.appEmail);
        return { id };
      },
      addMembership: () => {
        this.calls.addMembership++;
      },
      ...(withFindUserByEmail
        ? {
            findUserByEmail: (email: string): AppRecordRef | null => {
              this.calls.findUserByEmail++;
              for (const [id, e] of this.users) if (e === email) return { id };
              return null;
            },
          }
        : {}),
    };
  }
}

export interface E2eHarness {
  appUrl: string;
  mno: Maestrano;
  storage: StorageAdapter;
  app: E2eApp;
  logins: LoginArgs[];
  /** Direct SQL on the test database (the second channel). */
  sql(query: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

export interface E2eOptions {
  /** Builds the tenants once the app's URL is known. */
  tenants: (appUrl: string) => Promise<MaestranoConfigInput['tenants']> | MaestranoConfigInput['tenants'];
  sso?: MaestranoConfigInput['sso'];
  withFindUserByEmail?: boolean;
  onClose?: () => Promise<void>;
  /** The SDK's clock (default: the system clock). */
  clock?: () => Date;
  /** The SDK's fetch (default: the global one). */
  fetch?: typeof fetch;
}

export async function startE2e(options: E2eOptions): Promise<E2eHarness> {
  const dbName = `mno_sso_e2e_${randomBytes(5).toString('hex')}`;
  await adminQuery(`CREATE DATABASE "${dbName}"`);
  const url = new URL(PG_SERVER_URL);
  url.pathname = `/${dbName}`;
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url.toString(), max: 10 }) });
  await migrate({ prisma });
  const storage = prismaAdapter(prisma);
  const direct = new pg.Client({ connectionString: url.toString() });
  await direct.connect();

  let handler: ((request: Request) => Promise<Response>) | undefined;
  const server: Server = createServer((req, res) => {
    void toNodeListener((request) => handler!(request))(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const app = new E2eApp();
  const logins: LoginArgs[] = [];
  const mno = createMaestrano({
    tenants: await options.tenants(appUrl),
    storage,
    provisioning: app.provisioning(options.withFindUserByEmail ?? false),
    onLogin: (args) => {
      logins.push(args);
      return Response.json({ userId: args.user.id, companyId: args.company.id, outcome: args.outcome });
    },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    ...(options.sso ? { sso: options.sso } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  handler = mno.handler;

  return {
    appUrl,
    mno,
    storage,
    app,
    logins,
    sql: async (query, params = []) => (await direct.query(query, params)).rows as Record<string, unknown>[],
    async close() {
      await options.onClose?.();
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      await direct.end();
      await prisma.$disconnect();
      await adminQuery(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    },
  };
}

export interface Answer {
  status: number;
  body: Record<string, unknown>;
}

export async function postResponse(acsUrl: string, samlResponse: string, cookie?: string): Promise<Answer> {
  const res = await fetch(acsUrl, {
    method: 'POST',
    body: new URLSearchParams({ SAMLResponse: samlResponse }),
    headers: cookie ? { cookie } : {},
    redirect: 'manual',
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
  } catch {
    return { status: res.status, body: { text } };
  }
}

/** GET the init route like a browser: the IdP redirect and the binding cookie. */
export async function startLogin(url: string): Promise<{ location: string; cookie: string }> {
  const res = await fetch(url, { redirect: 'manual' });
  await res.body?.cancel();
  const cookie = res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0] ?? '')
    .join('; ');
  return { location: res.headers.get('location') ?? '', cookie };
}
