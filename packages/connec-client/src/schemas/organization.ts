import { z } from 'zod';
import {
  AddressGroup,
  ContactChannel,
  Email,
  Note,
  optBoolean,
  optNumber,
  optString,
  Phone,
  Reference,
  recordBase,
  Website,
} from './shared.js';

export const Organization = z.looseObject({
  ...recordBase,
  name: optString,
  industry: optString,
  annual_revenue: optNumber,
  capital: optNumber,
  number_of_employees: optNumber,
  is_customer: optBoolean,
  is_supplier: optBoolean,
  is_lead: optBoolean,
  address: AddressGroup.nullish(),
  email: Email.nullish(),
  website: Website.nullish(),
  phone: Phone.nullish(),
  contact_channel: ContactChannel.nullish(),
  assignee_id: Reference,
  assignee_type: optString,
  notes: z.array(Note).nullish(),
});
export type Organization = z.infer<typeof Organization>;
