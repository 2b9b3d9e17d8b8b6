/**
 * The examples of docs/billing.md, kept typechecked and exercised by
 * test/billing/example.test.ts. An app's billing set-up: a subscription per new company
 * (trial-aware), an exactly-once ad-hoc charge, and the account webhook hooks.
 */
import {
  type BillingConfigInput,
  ChargeInProgressError,
  type ChargeResult,
  createMaestrano,
  type Maestrano,
  type MaestranoConfigInput,
  type ProvisioningHooks,
} from '@org/maestrano-sdk';

// --- 1. Subscription set-up ----------------------------------------------------------
// `onCompanyCreated` runs in the durable `billing.subscribe` job once SSO has created the
// company. Return a plan (or null for a free account). The SDK starts the recurring bill
// no earlier than the later of the group's Maestrano free-trial end and your own trial.
export const billing: BillingConfigInput = {
  onCompanyCreated: (company, group) => {
    // Accounts brought by a reseller are billed by the reseller: no subscription here.
    if (group.resellerId) return null;
    return {
      priceCents: 2900,
      currency: group.currency ?? 'USD',
      period: 'Month',
      description: `Acme Pro (monthly), ${group.name ?? company.groupId}`,
      appTrialDays: 14, // your own trial, counted from the company's creation
    };
  },
  // Group deleted on Maestrano: cancel its recurring bills (the default).
  cancelRecurringBillsOnGroupDeleted: true,
};

// --- 2. The webhook hooks ------------------------------------------------------------
/** Your app's data layer (whatever you use). */
export interface AppStore {
  archiveCompany(companyId: string): Promise<void>;
  removeMember(userId: string, companyId: string): Promise<void>;
  blockUser(userId: string): Promise<void>;
  setSeatCount(companyId: string, seats: number): Promise<void>;
}

export function accountHooks(store: AppStore): Pick<ProvisioningHooks, 'cancelCompany' | 'removeMembership' | 'blockUser' | 'onSeatsChanged'> {
  return {
    // DELETE /maestrano/account/groups/:id/:tenant
    cancelCompany: async (company) => {
      await store.archiveCompany(company.id);
    },
    // DELETE /maestrano/account/groups/:group_id/users/:id/:tenant: no more access to that company
    removeMembership: async (user, company) => {
      await store.removeMember(user.id, company.id);
    },
    // ... and, when that was the user's last group, the user is blocked
    blockUser: async (user) => {
      await store.blockUser(user.id);
    },
    // Per-seat pricing: the number of active members changed.
    onSeatsChanged: async (company, change) => {
      await store.setSeatCount(company.id, change.activeSeats);
    },
  };
}

// --- 3. Wiring ---------------------------------------------------------------------------
export function createApp(
  base: Pick<MaestranoConfigInput, 'tenants' | 'storage' | 'provisioning' | 'onLogin'> & Partial<MaestranoConfigInput>,
  store: AppStore,
): Maestrano {
  return createMaestrano({
    ...base,
    provisioning: { ...base.provisioning, ...accountHooks(store) },
    billing,
  });
}

// --- 4. An ad-hoc charge, exactly once ---------------------------------------------------
// The idempotency key names the charge (here: one SMS pack per account and month). Calling
// this again (a retry, a double click, a replayed job) returns the same bill.
export async function chargeSmsPack(
  mno: Maestrano,
  args: { tenant: string; groupId: string; /** `YYYY-MM` */ month: string; packs: number },
): Promise<ChargeResult | 'in_progress'> {
  const [year, month] = args.month.split('-').map(Number) as [number, number];
  try {
    return await mno.billing.charge({
      tenant: args.tenant,
      groupId: args.groupId,
      priceCents: 500,
      units: args.packs,
      currency: 'USD',
      description: `SMS packs ${args.month}`,
      thirdParty: true, // pass-through cost: no marketplace commission
      periodStart: new Date(Date.UTC(year, month - 1, 1)),
      periodEnd: new Date(Date.UTC(year, month, 1) - 1), // last millisecond of the month
      idempotencyKey: `sms:${args.groupId}:${args.month}`,
    });
  } catch (error) {
    // Another request with the same key is still running: nothing was charged by this call.
    if (error instanceof ChargeInProgressError) return 'in_progress';
    throw error;
  }
}
