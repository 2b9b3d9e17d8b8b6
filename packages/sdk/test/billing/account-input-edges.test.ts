/**
 * Bad values given to the Account API client are typed errors (PayloadValidationError) and send
 * nothing, like the same values given to `mno.billing.charge` or returned as a plan.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { type AccountClient, createAccountClient } from '../../src/account/index.js';
import { PayloadValidationError } from '../../src/errors/index.js';
import { useAccountApi } from './helpers.js';

const server = useAccountApi('cld-1');
let client: AccountClient;

beforeEach(() => {
  const api = server();
  client = createAccountClient({ api: { id: api.apiId, key: api.apiKey, host: api.url, base: '/api/v1/' } }, { retry: { backoffLimitMs: 5 } });
});

/** The error of a call, thrown synchronously or rejected. */
async function errorOf(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
    return null;
  } catch (error) {
    return error;
  }
}

describe('list filters', () => {
  it('an invalid Date filter value is a PayloadValidationError, not a bare RangeError, and nothing is sent', async () => {
    const error = await errorOf(() => client.bills.list({ groupId: 'cld-1', where: { created_at_after: new Date('not a date') } }));
    expect(error).toBeInstanceOf(PayloadValidationError);
    expect(server().requests).toHaveLength(0);
  });

  it('a non-finite number filter value is a PayloadValidationError (not "NaN" sent and an empty list back)', async () => {
    const error = await errorOf(() => client.bills.list({ where: { price_cents: Number.NaN } }));
    expect(error).toBeInstanceOf(PayloadValidationError);
    expect(server().requests).toHaveLength(0);
  });
});

describe('create: values the platform always refuses (PROTOCOL §4.4) are refused before sending', () => {
  it('a recurring bill whose frequency × period exceeds a year', async () => {
    for (const input of [
      { period: 'Month' as const, frequency: 13 },
      { period: 'Day' as const, frequency: 366 },
      { period: 'Week' as const, frequency: 53 },
      { period: 'Year' as const, frequency: 2 },
    ]) {
      const error = await errorOf(() => client.recurringBills.create({ groupId: 'cld-1', priceCents: 100, description: 'x', ...input }));
      expect(error, JSON.stringify(input)).toBeInstanceOf(PayloadValidationError);
    }
    expect(server().requests).toHaveLength(0);
    // The limit itself is fine.
    await expect(client.recurringBills.create({ groupId: 'cld-1', priceCents: 100, description: 'x', period: 'Week', frequency: 52 })).resolves.toMatchObject({ frequency: 52 });
  });

  it('a bill whose period ends before it starts', async () => {
    const error = await errorOf(() =>
      client.bills.create({
        groupId: 'cld-1',
        priceCents: 100,
        description: 'x',
        periodStartedAt: new Date('2030-05-31T00:00:00Z'),
        periodEndedAt: new Date('2030-05-01T00:00:00Z'),
      }),
    );
    expect(error).toBeInstanceOf(PayloadValidationError);
    expect(server().requests).toHaveLength(0);
  });
});
