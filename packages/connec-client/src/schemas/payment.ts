import { z } from 'zod';
import { IdValue, Money, optNumber, optString, Reference, recordBase } from './shared.js';

/** A transaction a payment line settles: `{id, class: "Invoice", applied_amount}`. */
export const LinkedTransaction = z.looseObject({
  id: IdValue.nullish(),
  class: optString,
  applied_amount: optNumber,
});
export type LinkedTransaction = z.infer<typeof LinkedTransaction>;

export const PaymentLine = z.looseObject({
  id: IdValue.nullish(),
  line_number: optNumber,
  amount: optNumber,
  description: optString,
  linked_transactions: z.array(LinkedTransaction).nullish(),
});
export type PaymentLine = z.infer<typeof PaymentLine>;

export const Payment = z.looseObject({
  ...recordBase,
  title: optString,
  type: optString,
  transaction_number: optString,
  transaction_date: optString,
  person_id: Reference,
  organization_id: Reference,
  account_id: Reference,
  payment_method_id: Reference,
  amount: Money.nullish(),
  currency: optString,
  total_amount: optNumber,
  payment_lines: z.array(PaymentLine).nullish(),
  public_note: optString,
  private_note: optString,
});
export type Payment = z.infer<typeof Payment>;
