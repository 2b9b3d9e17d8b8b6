/**
 * The figures of the reliability report. Each test adds what it tried and what it observed;
 * when `RELIABILITY_RESULTS` names a file (set by `npm run reliability`), every entry is
 * appended to it as one JSON line, and the runner aggregates them into the table.
 */
import { appendFileSync } from 'node:fs';

export const FULL = process.env.RELIABILITY_FULL === '1';

/** Picks the CI size or the full size (`RELIABILITY_FULL=1`). */
export function size(ci: number, full: number): number {
  return FULL ? full : ci;
}

export type Area = 'saml' | 'pysaml2' | 'fuzz' | 'faults' | 'load';

export interface Figures {
  /** Hostile or malformed inputs sent. */
  casesTried: number;
  /** Of those, refused with the expected status/reason and no state change. */
  refusedCorrectly: number;
  /** Control inputs that must be accepted, and were. */
  acceptedCorrectly: number;
  /** Faults injected. */
  faultsInjected: number;
  /** Faults after which everything accepted was applied exactly once. */
  faultsSurvived: number;
  /** Records the platform had accepted (2xx) and that must end up applied. */
  recordsExpected: number;
  recordsLost: number;
  duplicates: number;
  /** Charges intended. */
  charges: number;
  doubleCharges: number;
}

export interface Entry extends Partial<Figures> {
  area: Area;
  name: string;
}

export const ZERO: Figures = {
  casesTried: 0,
  refusedCorrectly: 0,
  acceptedCorrectly: 0,
  faultsInjected: 0,
  faultsSurvived: 0,
  recordsExpected: 0,
  recordsLost: 0,
  duplicates: 0,
  charges: 0,
  doubleCharges: 0,
};

/** Records figures for the report (no-op unless `RELIABILITY_RESULTS` is set). */
export function report(entry: Entry): void {
  const file = process.env.RELIABILITY_RESULTS;
  if (!file) return;
  appendFileSync(file, `${JSON.stringify(entry)}\n`);
}
