// `withDeadline` (the worker's `stillWaiting` bound, the account webhooks' hook give-up): work that
// rejects after the deadline is no unhandled rejection, and work that settles first leaves no timer.
import { afterEach, expect, it, vi } from 'vitest';
import { withDeadline } from '../../src/internal/sleep.js';

afterEach(() => vi.useRealTimers());

it('no unhandled rejection when the work rejects after the deadline; timers cleared', async () => {
  const unhandled: unknown[] = [];
  const on = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', on);
  try {
    let fail!: (e: Error) => void;
    const work = new Promise<number>((_, reject) => {
      fail = reject;
    });
    await expect(withDeadline(work, 20, () => new Error('late'))).rejects.toThrow('late');
    fail(new Error('after'));
    await new Promise((r) => setTimeout(r, 20));
    // Settled first (resolved or rejected): the timer is cleared.
    vi.useFakeTimers();
    const p = withDeadline(Promise.resolve(1), 10_000, () => new Error('late'));
    await expect(p).resolves.toBe(1);
    expect(vi.getTimerCount()).toBe(0);
    const q = withDeadline(Promise.reject(new Error('boom')), 10_000, () => new Error('late'));
    await expect(q).rejects.toThrow('boom');
    expect(vi.getTimerCount()).toBe(0);
    vi.useRealTimers();
  } finally {
    process.off('unhandledRejection', on);
  }
  expect(unhandled).toEqual([]);
});
