import { describe, expect, it } from 'vitest';
import { syncLogger } from '../../src/sync/observe.js';

describe('sync logger redaction', () => {
  it('redacts personal fields and credentials at any depth, keeping ids and counts', () => {
    const lines: { message: string; fields: Record<string, unknown> | undefined }[] = [];
    const capture = (message: string, fields?: Record<string, unknown>) => lines.push({ message, fields });
    const logger = syncLogger({ debug: capture, info: capture, warn: capture, error: capture });
    logger.warn('sync: record failed', {
      connecId: 'p9',
      attempt: 3,
      apiKey: 'secret-key',
      record: {
        first_name: 'Jane',
        last_name: 'Doe',
        email: { address: 'jane@x.io' },
        phone_work: { landline: '+61 2 1234' },
        address_work: { billing: { line1: '1 George St' } },
        lines: [{ id: 'l1', quantity: 2 }],
      },
    });
    const fields = lines[0]?.fields;
    expect(fields).toEqual({
      connecId: 'p9',
      attempt: 3,
      apiKey: '[redacted]',
      record: {
        first_name: '[redacted]',
        last_name: '[redacted]',
        email: '[redacted]',
        phone_work: '[redacted]',
        address_work: '[redacted]',
        lines: [{ id: 'l1', quantity: 2 }],
      },
    });
    expect(JSON.stringify(lines)).not.toMatch(/jane|Doe|George|secret-key|1234/);
  });

  it('redacts social handles, app-side names, gender and free-text notes too', () => {
    const lines: Record<string, unknown>[] = [];
    const capture = (_message: string, fields?: Record<string, unknown>) => lines.push(fields ?? {});
    const logger = syncLogger({ debug: capture, info: capture, warn: capture, error: capture });
    logger.info('sync: mapped', {
      entity: 'contacts',
      record: {
        contact_channel: { skype: 'jane.doe.77', linkedin: 'in/janedoe' },
        gender: 'F',
        notes: 'met Jane at the Sydney expo, home 0412 345 678',
        fullName: 'Jane Doe',
        displayName: 'JD',
        username: 'jdoe',
        status: 'active',
      },
    });
    expect(lines[0]).toEqual({
      entity: 'contacts',
      record: {
        contact_channel: '[redacted]',
        gender: '[redacted]',
        notes: '[redacted]',
        fullName: '[redacted]',
        displayName: '[redacted]',
        username: '[redacted]',
        status: 'active',
      },
    });
  });
});
