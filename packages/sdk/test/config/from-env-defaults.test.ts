/**
 * `configFromEnv` defaults `MNO_DEVPL_HOST` to the production developer platform and
 * `MNO_DEVPL_API_PATH` to `/api/config/v1`. With a `logger` it says which values it used and
 * which were defaults, and never logs the environment key or secret.
 */
import { configFromEnv, type Logger } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { configError } from './helpers.js';

const KEY = 'env-key-must-not-be-logged';
const SECRET = 'env-secret-must-not-be-logged';

function recorder(): { logger: Logger; lines: { level: string; message: string; fields: unknown }[] } {
  const lines: { level: string; message: string; fields: unknown }[] = [];
  const at = (level: string) => (message: string, fields?: unknown) => void lines.push({ level, message, fields });
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

describe('configFromEnv defaults and logging', () => {
  it('without MNO_DEVPL_HOST / _API_PATH: the production platform, and the log says they are defaults', () => {
    const { logger, lines } = recorder();
    const config = configFromEnv({ MNO_DEVPL_ENV_KEY: KEY, MNO_DEVPL_ENV_SECRET: SECRET }, { logger });
    expect(config).toMatchObject({ host: 'https://developer.maestrano.com', apiPath: '/api/config/v1', environmentName: null });
    expect(lines).toEqual([
      {
        level: 'info',
        message: 'maestrano: developer platform settings from the environment',
        fields: {
          host: 'https://developer.maestrano.com',
          apiPath: '/api/config/v1',
          environmentName: null,
          defaults: ['MNO_DEVPL_HOST', 'MNO_DEVPL_API_PATH'],
        },
      },
    ]);
  });

  it('with every variable set: no default, MNO_DEVPL_ENV_NAME reported, key and secret never logged', () => {
    const { logger, lines } = recorder();
    const env = {
      MNO_DEVPL_HOST: 'http://127.0.0.1:4000',
      MNO_DEVPL_API_PATH: '/api/config/v1',
      MNO_DEVPL_ENV_NAME: 'local',
      MNO_DEVPL_ENV_KEY: KEY,
      MNO_DEVPL_ENV_SECRET: SECRET,
    };
    expect(configFromEnv(env, { logger })).toEqual({
      host: 'http://127.0.0.1:4000',
      apiPath: '/api/config/v1',
      environmentName: 'local',
      key: KEY,
      secret: SECRET,
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]?.fields).toMatchObject({ host: 'http://127.0.0.1:4000', environmentName: 'local', defaults: [] });
    const logged = JSON.stringify(lines);
    expect(logged).not.toContain(KEY);
    expect(logged).not.toContain(SECRET);
  });

  it('logs nothing when the environment is refused (the error names the variables only)', () => {
    const { logger, lines } = recorder();
    const e = configError(() => configFromEnv({ MNO_DEVPL_ENV_KEY: KEY, MNO_DEVPL_HOST: 'not a url' }, { logger }));
    expect(e.message).toContain('MNO_DEVPL_ENV_SECRET: required');
    expect(e.message).not.toContain(KEY);
    expect(lines).toEqual([]);
  });
});
