export { createAccountClient } from './client.js';
export type {
  AccountClient,
  AccountClientTenant,
  BillsResource,
  GroupsResource,
  ListParams,
  RecurringBillsResource,
  UserAuthenticateInput,
  UsersResource,
} from './client.js';
export type {
  AccountCredentials,
  AccountHttp,
  AccountHttpOptions,
  AccountRetryPolicy,
  AccountTimeouts,
  QueryValue,
  RequestOptions,
} from './http.js';
export type {
  AccountGroup,
  AccountUser,
  Bill,
  BillCreateInput,
  BillStatus,
  RecurringBill,
  RecurringBillCreateInput,
  RecurringBillPeriod,
} from './resources.js';
