/**
 * Calls an observability callback of the integrator's (an event listener, a progress callback,
 * a logger): a throw, or the rejection of a promise it returns (an `async` listener), goes to
 * `onFailure` and never further. An unhandled rejection ends a Node.js process by default, so
 * an `async` listener that fails must not be left floating.
 */
export function callObserver<A extends unknown[]>(
  fn: ((...args: A) => unknown) | undefined,
  args: A,
  onFailure?: (error: unknown) => void,
): void {
  if (!fn) return;
  const failed = (error: unknown) => {
    try {
      onFailure?.(error);
    } catch {
      // Reporting the failure failed too: nothing more to do.
    }
  };
  try {
    const result = fn(...args);
    if ((typeof result === 'object' || typeof result === 'function') && result !== null && typeof (result as PromiseLike<unknown>).then === 'function') {
      // Promise.resolve adopts any thenable; a `then` that throws becomes a rejection.
      Promise.resolve(result).catch(failed);
    }
  } catch (error) {
    failed(error);
  }
}
