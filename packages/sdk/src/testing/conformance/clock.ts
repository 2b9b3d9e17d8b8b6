/**
 * A controllable clock. Pass `clock.now` as `StorageOptions.clock` (or `Runtime.clock`) and
 * move time with `advance`/`set` instead of sleeping.
 */
export interface TestClock {
  /** The current fake time (a fresh `Date` on every call). */
  now: () => Date;
  /** Moves time forward (or backward with a negative value) by `ms`. */
  advance(ms: number): void;
  /** Sets the current time. */
  set(time: Date | number): void;
  /** Current time in ms since the epoch. */
  ms(): number;
}

/**
 * Default start of the conformance suite's clock: a fixed instant in the future, so an
 * adapter that takes time from the database server instead of the adapter clock fails loudly.
 */
export const CONFORMANCE_EPOCH = Date.UTC(2031, 0, 15, 12, 0, 0, 0);

export function createTestClock(start: Date | number = CONFORMANCE_EPOCH): TestClock {
  let current = typeof start === 'number' ? start : start.getTime();
  return {
    now: () => new Date(current),
    advance(ms: number) {
      current += ms;
    },
    set(time: Date | number) {
      current = typeof time === 'number' ? time : time.getTime();
    },
    ms: () => current,
  };
}
