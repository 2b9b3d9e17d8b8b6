/**
 * Building blocks shared by every Connec! entity schema.
 *
 * Every object schema is loose: fields Connec! adds later are kept (and typed `unknown`), never
 * stripped and never an error. Optional fields accept `null` as well as absence, because Connec!
 * serialises unset attributes either way.
 */
import { z } from 'zod';

/** A nullable, optional string: the shape of almost every Connec! scalar. */
export const optString = z.string().nullish();
export const optNumber = z.number().nullish();
export const optBoolean = z.boolean().nullish();

/**
 * An id or realm in an id array: text, or an integer another app pushed as a number (a
 * connector's own database ids; BaseCRM's pushes `{id: 2, ...}`), read as its decimal text so
 * that the record is not refused as a whole for another app's entry.
 */
const IdText = z.union([z.string(), z.number().int().transform(String)]);

/** One entry of an id array: `{id, provider, realm}`. `provider: "connec"` is Connec!'s own id, `realm` the org uid. */
export const IdMap = z.looseObject({
  id: IdText,
  provider: z.string(),
  realm: IdText,
});
export type IdMap = z.infer<typeof IdMap>;

export const IdMapArray = z.array(IdMap);

/**
 * A record id or reference: a plain Connec! UUID string when external ids are off, an array of
 * id maps when the client sends `CONNEC-EXTERNAL-IDS: true`.
 */
export const IdValue = z.union([z.string(), IdMapArray], {
  error: 'expected an id string or an array of {id, provider, realm}',
});
export type IdValue = z.infer<typeof IdValue>;

/** A reference field (`organization_id`, `lines/item_id`, ...): an id value, or unset. */
export const Reference = IdValue.nullish();
export type Reference = z.infer<typeof Reference>;

/**
 * A date-time in any of the forms {@link Timestamp} accepts: `hh:mm`, optional seconds and
 * fraction, then `Z`, an extended (`±hh:mm`) or basic (`±hhmm`) offset, or nothing.
 */
const DATE_TIME_PARTS = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})(:\d{2}(?:\.\d+)?)?(Z|([+-]\d{2}):?(\d{2}))?$/;
const ISO_DATETIME = z.iso.datetime({ offset: true, local: true });

/**
 * A Connec! timestamp string written out in full (`YYYY-MM-DDThh:mm:ss[.fff]`, then `Z`, `±hh:mm`
 * or nothing), or `undefined` when `value` does not have the shape: a missing seconds part becomes
 * `:00` and a basic offset (`+0200`) its extended form (`+02:00`). `z.iso.datetime` wants seconds
 * whenever an offset is present and takes no basic offset; the normalised string is what it checks
 * (so the calendar and the offset range are checked the same way for every form) and what
 * `Date` reads.
 */
export function normalizeTimestamp(value: string): string | undefined {
  const m = DATE_TIME_PARTS.exec(value);
  if (!m) return undefined;
  const [, minutes, seconds = ':00', offset, offsetHours, offsetMinutes] = m;
  const zone = offset === undefined ? '' : offset === 'Z' ? 'Z' : `${offsetHours}:${offsetMinutes}`;
  const full = `${minutes}${seconds}${zone}`;
  return ISO_DATETIME.safeParse(full).success ? full : undefined;
}

/**
 * ISO-8601 timestamp kept as the string Connec! sent (the sync engine hashes and compares it):
 * the schema checks the value, it never rewrites it. Seconds may be missing (`2016-07-01T12:30Z`)
 * and the offset (`Z`, `±hh:mm` or `±hhmm`) may be missing: Connec! timestamps are UTC (PROTOCOL
 * §6.7), so such a string means UTC, not the host's local time. `parseConnecDate()` reads it
 * that way. Refusing a form Ruby's `Time#iso8601` never sends but other serialisers do
 * (`+0000`, no seconds) would make a whole notification a 400, which Connec! does not send again.
 */
export const Timestamp = z.string().refine((value) => normalizeTimestamp(value) !== undefined, { error: 'Invalid ISO datetime' });

export const Address = z.looseObject({
  line1: optString,
  line2: optString,
  city: optString,
  region: optString,
  postal_code: optString,
  country: optString,
});
export type Address = z.infer<typeof Address>;

/** `{billing, billing2, shipping, shipping2}`; empty sub-objects (`"billing2": {}`) are common. */
export const AddressGroup = z.looseObject({
  billing: Address.nullish(),
  billing2: Address.nullish(),
  shipping: Address.nullish(),
  shipping2: Address.nullish(),
});
export type AddressGroup = z.infer<typeof AddressGroup>;

export const Phone = z.looseObject({
  landline: optString,
  landline2: optString,
  mobile: optString,
  mobile2: optString,
  fax: optString,
  fax2: optString,
  pager: optString,
  pager2: optString,
});
export type Phone = z.infer<typeof Phone>;

export const Email = z.looseObject({
  address: optString,
  address2: optString,
});
export type Email = z.infer<typeof Email>;

export const Website = z.looseObject({
  url: optString,
  url2: optString,
});
export type Website = z.infer<typeof Website>;

export const ContactChannel = z.looseObject({
  skype: optString,
  facebook: optString,
  twitter: optString,
  linkedin: optString,
  google: optString,
});
export type ContactChannel = z.infer<typeof ContactChannel>;

/** `{total_amount, net_amount, tax_amount, tax_rate, currency}`. */
export const Money = z.looseObject({
  total_amount: optNumber,
  net_amount: optNumber,
  tax_amount: optNumber,
  tax_rate: optNumber,
  currency: optString,
});
export type Money = z.infer<typeof Money>;

/** `{status, created_at}` entries such as `lead_status_changes` and `sales_stage_changes`. */
export const StatusChange = z.looseObject({
  status: optString,
  created_at: optString,
});
export type StatusChange = z.infer<typeof StatusChange>;

/** A note sub-record (`people.notes[]`), with its own id array. */
export const Note = z.looseObject({
  id: IdValue.nullish(),
  description: optString,
  tag: optString,
  value: optString,
});
export type Note = z.infer<typeof Note>;

/**
 * Fields every Connec! record carries. `id` is required on records Connec! returns; the input
 * schemas used for create/update make every field optional.
 */
export const recordBase = {
  id: IdValue,
  code: optString,
  status: optString,
  group_id: optString,
  channel_id: optString,
  resource_type: optString,
  created_at: Timestamp.nullish(),
  updated_at: Timestamp.nullish(),
};

/** A record of a collection without a typed schema: only the common fields are checked. */
export const ConnecRecord = z.looseObject({
  ...recordBase,
  id: IdValue.optional(),
});
export type ConnecRecord = z.infer<typeof ConnecRecord>;

/** One line of a transaction (`invoices.lines[]`, `sales_orders.lines[]`, ...). */
export const TransactionLine = z.looseObject({
  id: IdValue.nullish(),
  line_number: optNumber,
  item_id: Reference,
  tax_code_id: Reference,
  account_id: Reference,
  description: optString,
  status: optString,
  quantity: optNumber,
  unit_price: Money.nullish(),
  total_price: Money.nullish(),
  reduction_percent: optNumber,
  is_shipping: optBoolean,
});
export type TransactionLine = z.infer<typeof TransactionLine>;

/** Fields shared by invoices, sales orders, purchase orders and quotes. */
export const transactionBase = {
  ...recordBase,
  title: optString,
  type: optString,
  transaction_number: optString,
  transaction_date: optString,
  due_date: optString,
  person_id: Reference,
  organization_id: Reference,
  lines: z.array(TransactionLine).nullish(),
  lines_shipping: z.array(TransactionLine).nullish(),
  billing_address: Address.nullish(),
  shipping_address: Address.nullish(),
  amount: Money.nullish(),
  currency: optString,
  balance: optNumber,
  deposit: optNumber,
  discount_amount: optNumber,
  apply_tax_after_discount: optBoolean,
  public_note: optString,
  private_note: optString,
};
