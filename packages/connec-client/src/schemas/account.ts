import { z } from 'zod';
import { optNumber, optString, Reference, recordBase } from './shared.js';

/** A ledger account of the chart of accounts. */
export const Account = z.looseObject({
  ...recordBase,
  name: optString,
  description: optString,
  class: optString,
  classification: optString,
  type: optString,
  sub_type: optString,
  currency: optString,
  current_balance: optNumber,
  bank_account_number: optString,
  parent_account_id: Reference,
  tax_code_id: Reference,
});
export type Account = z.infer<typeof Account>;
