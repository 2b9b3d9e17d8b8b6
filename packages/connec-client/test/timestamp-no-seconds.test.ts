// A Connec! timestamp may leave out its seconds whatever follows the minutes: `Z`, `±hh:mm`,
// `±hhmm` or nothing (the shape dates.ts TIMESTAMP_SHAPE documents). A form refused here makes a
// whole notification a 400, and Connec! does not send a refused notification again.
import { describe, expect, it } from 'vitest';
import { TIMESTAMP_SHAPE } from '../src/dates.js';
import { parseConnecDate, parseNotification, Person, Timestamp } from '../src/index.js';
import { encodeQuery } from '../src/resources.js';

describe('a timestamp with minutes but no seconds', () => {
  it('is accepted with or without an offset, and read as the instant it denotes', () => {
    expect(TIMESTAMP_SHAPE).toContain('YYYY-MM-DDThh:mm[:ss[.fff]], then Z, ±hh:mm, ±hhmm, or nothing');
    for (const [value, iso] of [
      ['2016-07-01T12:30', '2016-07-01T12:30:00.000Z'],
      ['2016-07-01T12:30Z', '2016-07-01T12:30:00.000Z'],
      ['2016-07-01T12:30+01:00', '2016-07-01T11:30:00.000Z'],
      ['2016-10-04T00:36+0200', '2016-10-03T22:36:00.000Z'],
      ['2016-10-04T06:06-0530', '2016-10-04T11:36:00.000Z'],
    ] as const) {
      expect(Timestamp.safeParse(value).success, value).toBe(true);
      expect(parseConnecDate(value).toISOString(), value).toBe(iso);
    }
  });

  it('still refuses out-of-range fields and malformed offsets', () => {
    for (const value of ['2016-07-01T12:60Z', '2016-07-01T24:00Z', '2016-02-30T12:30Z', '2016-07-01T12:30+2460', '2016-07-01T12:30+000', '2016-07-01T12:30:Z', '2016-07-01T12Z']) {
      expect(Timestamp.safeParse(value).success, value).toBe(false);
      expect(() => parseConnecDate(value), value).toThrow(/Invalid Connec! timestamp/);
    }
  });

  it('a record keeps the string as sent', () => {
    const parsed = Person.parse({ id: 'p1', first_name: 'Jane', updated_at: '2016-07-01T12:30Z', created_at: '2016-07-01T12:30+0200' });
    expect(parsed.updated_at).toBe('2016-07-01T12:30Z');
    expect(parsed.created_at).toBe('2016-07-01T12:30+0200');
  });

  it('a notification whose record carries updated_at 2016-07-01T12:30Z is accepted', () => {
    const body = { people: [{ id: 'p1', group_id: 'cld-1', first_name: 'Jane', updated_at: '2016-07-01T12:30Z' }] };
    expect(() => parseNotification(body)).not.toThrow();
  });

  it('list({ updatedSince: "2016-07-01T12:30Z" }) builds the filter', () => {
    expect(decodeURIComponent(encodeQuery({ updatedSince: '2016-07-01T12:30Z' }))).toBe("$filter=updated_at gt '2016-07-01T12:30:00Z'");
    expect(decodeURIComponent(encodeQuery({ updatedSince: '2016-07-01T12:30+0200' }))).toBe("$filter=updated_at gt '2016-07-01T10:30:00Z'");
  });
});
