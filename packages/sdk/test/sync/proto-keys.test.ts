/**
 * A `__proto__` key inside a Connec! record (JSON.parse makes it an own property, and the
 * storage contract keeps it as data) must reach the app as data, and one in what `toConnec`
 * returns must reach Connec!: copied by assignment, the key replaced the copy's prototype, so
 * the field vanished (from the stored notification job, from the pushed payload) and its
 * content showed up as inherited properties of the object holding it.
 */
import { memoryAdapter } from '@org/maestrano-sdk';
import { describe, it } from 'vitest';
import { inboundProtoKey, outboundProtoKey } from './proto-keys-scenario.js';

describe('a __proto__ key in a record is data (memory adapter)', () => {
  it('inbound: a notified record reaches local.create with its __proto__ field, and no prototype change', async () => {
    await inboundProtoKey(memoryAdapter());
  });

  it('outbound: a toConnec result reaches Connec! with its __proto__ field', async () => {
    await outboundProtoKey(memoryAdapter());
  });
});
