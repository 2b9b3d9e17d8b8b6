/**
 * The typed entity catalog: collection name -> zod schema, plus the reference fields of each
 * collection, and the normalisation of entity names (`Person`, `Invoice`) to collection names.
 */
import type { z } from 'zod';
import { Account } from './account.js';
import { AppUser } from './app-user.js';
import { Company } from './company.js';
import { Employee } from './employee.js';
import { Item } from './item.js';
import { Opportunity } from './opportunity.js';
import { Organization } from './organization.js';
import { Payment } from './payment.js';
import { Person } from './person.js';
import { ConnecRecord } from './shared.js';
import { TaxCode } from './tax-code.js';
import { Invoice, PurchaseOrder, Quote, SalesOrder } from './transactions.js';

/** Collections with a typed schema. `company` is the singular resource (no id in its path). */
export const connecCollections = {
  organizations: Organization,
  people: Person,
  items: Item,
  invoices: Invoice,
  sales_orders: SalesOrder,
  purchase_orders: PurchaseOrder,
  quotes: Quote,
  payments: Payment,
  accounts: Account,
  tax_codes: TaxCode,
  opportunities: Opportunity,
  employees: Employee,
  app_users: AppUser,
  company: Company,
} as const;

export type ConnecCollections = typeof connecCollections;
export type CollectionName = keyof ConnecCollections;
/** Typed collections that are real collections (list/retrieve/create/update by id). */
export type PluralCollectionName = Exclude<CollectionName, 'company'>;
/** The record type Connec! returns for a typed collection. */
export type CollectionRecord<K extends CollectionName> = z.output<ConnecCollections[K]>;
/** The record type of any collection name: typed for the catalog, {@link ConnecRecord} otherwise. */
export type RecordOf<K extends string> = K extends CollectionName ? CollectionRecord<K> : ConnecRecord;
/**
 * What create/update accept: every field optional (Connec! validates required fields itself),
 * unknown fields and `opts` (`matching_fields`, `sparse`, ...) passed through.
 */
export type RecordInput<K extends string> = Partial<RecordOf<K>> & Record<string, unknown>;

export const collectionNames = Object.keys(connecCollections) as readonly CollectionName[];

export function isCollectionName(name: string): name is CollectionName {
  return Object.hasOwn(connecCollections, name);
}

/** The schema used to parse records of `name`: the typed one, or the generic {@link ConnecRecord}. */
export function schemaFor(name: string): z.ZodType<ConnecRecord> {
  return isCollectionName(name) ? connecCollections[name] : ConnecRecord;
}

/**
 * Every collection name Connec! is known to accept (PROTOCOL §6.10), typed or not. Used to
 * normalise notification keys; other names still work through `client.group(g).collection(name)`.
 */
export const knownCollectionNames = [
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
] as const;

const known = new Set<string>(knownCollectionNames);

function singularOf(plural: string): string {
  if (plural === 'people') return 'person';
  if (plural === 'company') return 'company';
  if (plural.endsWith('ies')) return `${plural.slice(0, -3)}y`;
  if (plural.endsWith('s')) return plural.slice(0, -1);
  return plural;
}

const bySingular = new Map<string, string>(knownCollectionNames.map((name) => [singularOf(name), name]));

function pluralOf(singular: string): string {
  if (singular.endsWith('person')) return `${singular.slice(0, -'person'.length)}people`;
  if (singular.endsWith('s')) return singular;
  if (/[^aeiou]y$/.test(singular)) return `${singular.slice(0, -1)}ies`;
  return `${singular}s`;
}

/**
 * Normalise an entity or collection name to the plural snake_case collection name Connec! uses in
 * paths and envelopes: `Person` -> `people`, `Invoice` -> `invoices`, `SalesOrder` ->
 * `sales_orders`, `tax_code` -> `tax_codes`, `Company` -> `company`, `people` -> `people`.
 * Returns `undefined` for a name that cannot be a collection (empty, or characters other than
 * letters, digits, `_`, `-` and spaces).
 */
export function normalizeCollectionName(name: string): string | undefined {
  const trimmed = name.trim();
  if (!/^[A-Za-z][A-Za-z0-9_\- ]*$/.test(trimmed)) return undefined;
  const snake = trimmed
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    // One capital at a time (lookahead): `([A-Z]+)([A-Z][a-z])` is quadratic on a long run of capitals.
    .replace(/([A-Z])(?=[A-Z][a-z])/g, '$1_')
    .replace(/[\s-]+/g, '_')
    .toLowerCase();
  if (known.has(snake)) return snake;
  return bySingular.get(snake) ?? pluralOf(snake);
}

/** A reference field of a collection, as a slash path (`lines/item_id`), and the collection it points to. */
export interface ReferenceField {
  readonly path: string;
  /** The referenced collection; `null` when it depends on the record (e.g. `linked_transactions[].class`). */
  readonly target: CollectionName | null;
}

const transactionReferences: readonly ReferenceField[] = [
  { path: 'person_id', target: 'people' },
  { path: 'organization_id', target: 'organizations' },
  { path: 'lines/item_id', target: 'items' },
  { path: 'lines/tax_code_id', target: 'tax_codes' },
  { path: 'lines/account_id', target: 'accounts' },
];

/** Reference fields per typed collection (PROTOCOL §6.6, CONNECTORS §B). */
export const referenceFields: { readonly [K in CollectionName]: readonly ReferenceField[] } = {
  organizations: [{ path: 'assignee_id', target: 'app_users' }],
  people: [
    { path: 'organization_id', target: 'organizations' },
    { path: 'assignee_id', target: 'app_users' },
  ],
  items: [
    { path: 'sale_tax_code_id', target: 'tax_codes' },
    { path: 'purchase_tax_code_id', target: 'tax_codes' },
    { path: 'sale_account_id', target: 'accounts' },
    { path: 'purchase_account_id', target: 'accounts' },
    { path: 'parent_item_id', target: 'items' },
  ],
  invoices: [...transactionReferences, { path: 'sales_order_id', target: 'sales_orders' }],
  sales_orders: [...transactionReferences, { path: 'quote_id', target: 'quotes' }],
  purchase_orders: transactionReferences,
  quotes: transactionReferences,
  payments: [
    { path: 'person_id', target: 'people' },
    { path: 'organization_id', target: 'organizations' },
    { path: 'account_id', target: 'accounts' },
    { path: 'payment_lines/linked_transactions/id', target: null },
  ],
  accounts: [
    { path: 'parent_account_id', target: 'accounts' },
    { path: 'tax_code_id', target: 'tax_codes' },
  ],
  tax_codes: [],
  opportunities: [
    { path: 'lead_id', target: 'people' },
    { path: 'assignee_id', target: 'app_users' },
  ],
  employees: [],
  app_users: [],
  company: [],
};

/** Paths of sub-record ids (their own id arrays, not references), e.g. `lines/id`. */
export const subRecordIdPaths: { readonly [K in CollectionName]: readonly string[] } = {
  organizations: ['notes/id'],
  people: ['notes/id'],
  items: [],
  invoices: ['lines/id', 'lines_shipping/id'],
  sales_orders: ['lines/id', 'lines_shipping/id'],
  purchase_orders: ['lines/id', 'lines_shipping/id'],
  quotes: ['lines/id', 'lines_shipping/id'],
  payments: ['payment_lines/id'],
  accounts: [],
  tax_codes: [],
  opportunities: [],
  employees: [],
  app_users: [],
  company: [],
};
