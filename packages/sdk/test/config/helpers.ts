import { ConfigError } from '@org/maestrano-sdk';
import { expect } from 'vitest';

/** Runs `fn`, which must throw a `ConfigError`, and returns it. */
export function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}
