/** Collections accepted by Connec! (PROTOCOL §6.10), `company` being singular. */
export const CONNEC_COLLECTIONS: readonly string[] = [
  'company',
  'accounts',
  'invoices',
  'sales_orders',
  'purchase_orders',
  'quotes',
  'payments',
  'stock_adjustments',
  'journals',
  'items',
  'organizations',
  'people',
  'projects',
  'tax_codes',
  'tax_rates',
  'warehouses',
  'events',
  'venues',
  'event_orders',
  'work_locations',
  'pay_items',
  'employees',
  'pay_schedules',
  'time_sheets',
  'time_activities',
  'pay_runs',
  'pay_stubs',
  'leave_applications',
  'transaction_logs',
  'connector_syncs',
  'opportunities',
  'app_users',
  'contacts',
];

export const SINGULAR_COLLECTIONS: ReadonlySet<string> = new Set(['company']);

/** Target collection of a reference field, used to scope external ids (PROTOCOL §6.6). */
export const REFERENCE_TARGETS: Readonly<Record<string, string>> = {
  organization_id: 'organizations',
  person_id: 'people',
  item_id: 'items',
  lead_id: 'people',
  assignee_id: 'app_users',
  sale_tax_code_id: 'tax_codes',
  purchase_tax_code_id: 'tax_codes',
  tax_code_id: 'tax_codes',
  sale_account_id: 'accounts',
  purchase_account_id: 'accounts',
  account_id: 'accounts',
  invoice_id: 'invoices',
  opportunity_id: 'opportunities',
  employee_id: 'employees',
  project_id: 'projects',
  warehouse_id: 'warehouses',
  tax_rate_id: 'tax_rates',
  venue_id: 'venues',
  event_id: 'events',
};

/** Nested arrays whose entries are sub-entities with their own ids (`lines/id`). */
export const LINE_ARRAYS: ReadonlySet<string> = new Set(['lines', 'payment_lines']);

/** Fields managed by Connec! itself; never treated as references. */
const SYSTEM_FIELDS: ReadonlySet<string> = new Set(['id', 'group_id', 'channel_id', 'resource_type', 'created_at', 'updated_at']);

export function isReferenceField(key: string): boolean {
  return key.endsWith('_id') && !SYSTEM_FIELDS.has(key);
}

export function transactionClassToCollection(cls: unknown): string {
  switch (String(cls ?? '').toLowerCase()) {
    case 'salesorder':
    case 'sales_order':
      return 'sales_orders';
    case 'purchaseorder':
    case 'purchase_order':
      return 'purchase_orders';
    case 'quote':
      return 'quotes';
    default:
      return 'invoices';
  }
}
