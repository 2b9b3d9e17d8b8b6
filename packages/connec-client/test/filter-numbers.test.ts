/**
 * Number literals in `$filter`: JavaScript writes very small and very large numbers in exponent
 * form (`1e-7`, `1e+21`), which the Connec! filter grammar (`-?\d+(\.\d+)?`, as the loopback
 * server and the sandbox parse it) refuses with a 400.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { gt, lt } from '../src/index.js';
import { GROUP, type Harness, startHarness } from './helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.server.close();
  h = undefined;
});

describe('$filter number literals', () => {
  it('a small or large number is sent in plain decimal form, so Connec! accepts the filter', async () => {
    h = await startHarness();
    h.server.seed(GROUP, 'items', [
      { name: 'dust', weight: 0.00000005 },
      { name: 'grain', weight: 0.0000002 },
      { name: 'planet', weight: 6e24 },
    ]);
    const items = h.client.group(GROUP).items;
    const light = await items.list({ filter: lt('weight', 1e-7) }).toArray({ limit: 10 });
    expect(light.map((i) => i.name)).toEqual(['dust']);
    const heavy = await items.list({ filter: gt('weight', 1e21) }).toArray({ limit: 10 });
    expect(heavy.map((i) => i.name)).toEqual(['planet']);
    expect(lt('weight', -1.5e-7).toString()).toBe('weight lt -0.00000015');
    expect(gt('weight', 1.25e22).toString()).toBe('weight gt 12500000000000000000000');
  });
});
