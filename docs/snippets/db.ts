import type { SsoSession } from '@org/maestrano-sdk';

/**
 * The guides' example app keeps its own records in memory, so the snippets stay short and run
 * anywhere. A real app uses its database here (see examples/crm/src/db.ts for Prisma).
 */
export interface Company {
  id: string;
  tenant: string;
  groupId: string;
  name: string;
  active: boolean;
}

export interface User {
  id: string;
  /** The marketplace the user came from (account linking stays inside it). */
  tenant: string;
  email: string;
  firstName: string;
  lastName: string;
  blocked: boolean;
}

export interface Contact {
  id?: string;
  firstName: string;
  lastName: string;
  email: string | null;
  updatedAt?: Date;
}

export interface Session {
  userId: string;
  companyId: string;
  /** The SDK's SSO session (tenant, uid, group, token, recheck time). */
  maestrano: SsoSession;
}

export function createDb() {
  return {
    companies: new Map<string, Company>(),
    users: new Map<string, User>(),
    memberships: new Map<string, string>(), // `${userId}:${companyId}` -> role
    sessions: new Map<string, Session>(),
    contacts: new Map<string, Contact & { tenant: string; groupId: string }>(),
    /** Idempotency keys of the SDK's hooks -> the id created for them. */
    keys: new Map<string, string>(),
  };
}

export type Db = ReturnType<typeof createDb>;
