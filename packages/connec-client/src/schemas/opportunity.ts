import { z } from 'zod';
import { Money, optNumber, optString, Reference, recordBase, StatusChange } from './shared.js';

export const Opportunity = z.looseObject({
  ...recordBase,
  name: optString,
  description: optString,
  type: optString,
  sales_stage: optString,
  sales_stage_changes: z.array(StatusChange).nullish(),
  probability: optNumber,
  expected_close_date: optString,
  next_step: optString,
  amount: Money.nullish(),
  lead_id: Reference,
  assignee_id: Reference,
  assignee_type: optString,
});
export type Opportunity = z.infer<typeof Opportunity>;
