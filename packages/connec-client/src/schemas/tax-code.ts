import { z } from 'zod';
import { optBoolean, optNumber, optString, recordBase } from './shared.js';

/** One component of a (possibly compound) tax code. */
export const TaxComponent = z.looseObject({
  name: optString,
  rate: optNumber,
  type: optString,
  is_compound: optBoolean,
});
export type TaxComponent = z.infer<typeof TaxComponent>;

export const TaxCode = z.looseObject({
  ...recordBase,
  name: optString,
  description: optString,
  sale_tax_rate: optNumber,
  purchase_tax_rate: optNumber,
  sale_taxes: z.array(TaxComponent).nullish(),
  purchase_taxes: z.array(TaxComponent).nullish(),
  sale_tax_type: optString,
  purchase_tax_type: optString,
});
export type TaxCode = z.infer<typeof TaxCode>;
