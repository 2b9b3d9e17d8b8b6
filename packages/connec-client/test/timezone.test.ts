import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

describe('timestamps without an offset are UTC whatever the host time zone (PROTOCOL §6.7)', () => {
  it('parseConnecDate and list({ updatedSince }) under TZ=America/New_York', async () => {
    const script = fileURLToPath(new URL('./fixtures/utc-reading.ts', import.meta.url));
    const { stdout } = await promisify(execFile)(process.execPath, ['--conditions=@org/source', '--import', 'tsx', script], {
      env: { ...process.env, TZ: 'America/New_York' },
      cwd: fileURLToPath(new URL('..', import.meta.url)),
    });
    expect(JSON.parse(stdout)).toEqual({
      hostOffsetMinutes: 300, // the child really runs 5 h west of UTC
      parsed: '2016-01-01T00:00:00.000Z',
      parsedNoSeconds: '2016-07-01T12:30:00.000Z',
      filter: "updated_at gt '2016-01-01T00:00:00Z'",
    });
  });
});
