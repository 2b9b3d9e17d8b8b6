import { z } from 'zod';
import { AddressGroup, Email, optBoolean, optString, Phone, Reference, recordBase, Website } from './shared.js';

export const Employee = z.looseObject({
  ...recordBase,
  title: optString,
  first_name: optString,
  last_name: optString,
  job_title: optString,
  gender: optString,
  birth_date: optString,
  hired_date: optString,
  release_date: optString,
  /**
   * The employee's number in the HR system. Like every `*_id` field it is an id reference: an id
   * array under `CONNEC-EXTERNAL-IDS` (PROTOCOL §6.6), a plain string otherwise.
   */
  employee_id: Reference,
  is_active: optBoolean,
  email: Email.nullish(),
  website: Website.nullish(),
  phone: Phone.nullish(),
  address: AddressGroup.nullish(),
  pay_schedule_id: Reference,
  work_location_id: Reference,
});
export type Employee = z.infer<typeof Employee>;
