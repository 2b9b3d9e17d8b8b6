/**
 * Which step of an SSO login failed (`'createUser failed'`, …), kept beside the error for the
 * log: the error's own message is the one the user sees, its cause the app's own error.
 */
const steps = new WeakMap<Error, string>();

export function noteFailedStep(error: Error, step: string): void {
  steps.set(error, step);
}

/** `{ step }` for a log entry, or nothing when the error names no step. */
export function stepField(error: Error): { step?: string } {
  const step = steps.get(error);
  return step === undefined ? {} : { step };
}
