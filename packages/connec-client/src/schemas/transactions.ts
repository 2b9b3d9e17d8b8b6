/** Invoices, sales orders, purchase orders and quotes share one transaction shape. */
import { z } from 'zod';
import { optString, transactionBase } from './shared.js';

export const Invoice = z.looseObject({
  ...transactionBase,
  sales_order_id: transactionBase.person_id,
  payment_method: optString,
});
export type Invoice = z.infer<typeof Invoice>;

export const SalesOrder = z.looseObject({
  ...transactionBase,
  quote_id: transactionBase.person_id,
});
export type SalesOrder = z.infer<typeof SalesOrder>;

export const PurchaseOrder = z.looseObject({
  ...transactionBase,
  supplier_invoice_number: optString,
});
export type PurchaseOrder = z.infer<typeof PurchaseOrder>;

export const Quote = z.looseObject({
  ...transactionBase,
  expiry_date: optString,
});
export type Quote = z.infer<typeof Quote>;
