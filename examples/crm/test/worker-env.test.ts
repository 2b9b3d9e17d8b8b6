import { describe, expect, it } from 'vitest';
import { workerConcurrencyFromEnv } from '../src/worker-env.js';

describe('CRM_WORKER_CONCURRENCY', () => {
  it('is a whole number from 1 to 256 (surrounding spaces allowed); unset or empty is the default', () => {
    expect(workerConcurrencyFromEnv(undefined)).toBe(4);
    expect(workerConcurrencyFromEnv('')).toBe(4);
    expect(workerConcurrencyFromEnv(' \r')).toBe(4);
    expect(workerConcurrencyFromEnv('8')).toBe(8);
    expect(workerConcurrencyFromEnv('2\r')).toBe(2);
    expect(workerConcurrencyFromEnv('256')).toBe(256);
  });

  it('refuses anything else with an error naming the variable (Number("four") is NaN: a worker that never runs a job)', () => {
    for (const value of ['four', '2.5', '0', '-1', '1e3', '0x10', '257', '4 jobs']) {
      expect(() => workerConcurrencyFromEnv(value), value).toThrow(/^CRM_WORKER_CONCURRENCY must be a whole number from 1 to 256/);
    }
  });
});
