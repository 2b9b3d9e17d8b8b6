import { z } from 'zod';
import { AddressGroup, Email, optString, Phone, recordBase, Website } from './shared.js';

/** The singular `company` resource of a group (`GET/PUT /{group}/company`, no id in the path). */
export const Company = z.looseObject({
  ...recordBase,
  name: optString,
  timezone: optString,
  currency: optString,
  logo: z.union([z.string(), z.looseObject({})]).nullish(),
  email: Email.nullish(),
  website: Website.nullish(),
  phone: Phone.nullish(),
  address: AddressGroup.nullish(),
  tax_number: optString,
  registration_number: optString,
});
export type Company = z.infer<typeof Company>;
