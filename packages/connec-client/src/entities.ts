// The typed entity catalog (`@org/connec-client/entities`): zod schemas, inferred types, the
// collection map and reference metadata. Explicit named exports only.

export { Account } from './schemas/account.js';
export { AppUser } from './schemas/app-user.js';
export type {
  CollectionName,
  CollectionRecord,
  ConnecCollections,
  PluralCollectionName,
  RecordInput,
  RecordOf,
  ReferenceField,
} from './schemas/catalog.js';
export {
  collectionNames,
  connecCollections,
  isCollectionName,
  knownCollectionNames,
  normalizeCollectionName,
  referenceFields,
  schemaFor,
  subRecordIdPaths,
} from './schemas/catalog.js';
export { Company } from './schemas/company.js';
export { Employee } from './schemas/employee.js';
export { Item } from './schemas/item.js';
export { Opportunity } from './schemas/opportunity.js';
export { Organization } from './schemas/organization.js';
export { LinkedTransaction, Payment, PaymentLine } from './schemas/payment.js';
export { Person } from './schemas/person.js';
export {
  Address,
  AddressGroup,
  ConnecRecord,
  ContactChannel,
  Email,
  IdMap,
  IdMapArray,
  IdValue,
  Money,
  Note,
  Phone,
  Reference,
  StatusChange,
  Timestamp,
  TransactionLine,
  Website,
} from './schemas/shared.js';
export { TaxCode, TaxComponent } from './schemas/tax-code.js';
export { Invoice, PurchaseOrder, Quote, SalesOrder } from './schemas/transactions.js';
export { parseConnecDate } from './dates.js';
