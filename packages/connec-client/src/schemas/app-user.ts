import { z } from 'zod';
import { AddressGroup, Email, optBoolean, optString, Phone, recordBase } from './shared.js';

export const AppUser = z.looseObject({
  ...recordBase,
  first_name: optString,
  last_name: optString,
  email: z.union([z.string(), Email]).nullish(),
  is_admin: optBoolean,
  phone_work: Phone.nullish(),
  address_work: AddressGroup.nullish(),
});
export type AppUser = z.infer<typeof AppUser>;
