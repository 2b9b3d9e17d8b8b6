import { z } from 'zod';
import { Money, optBoolean, optNumber, optString, Reference, recordBase } from './shared.js';

export const Item = z.looseObject({
  ...recordBase,
  name: optString,
  reference: optString,
  description: optString,
  type: optString,
  unit: optString,
  is_inventoried: optBoolean,
  quantity_available: optNumber,
  quantity_on_hand: optNumber,
  weight: optNumber,
  weight_unit: optString,
  sale_price: Money.nullish(),
  purchase_price: Money.nullish(),
  sale_tax_code_id: Reference,
  purchase_tax_code_id: Reference,
  sale_account_id: Reference,
  purchase_account_id: Reference,
  parent_item_id: Reference,
});
export type Item = z.infer<typeof Item>;
