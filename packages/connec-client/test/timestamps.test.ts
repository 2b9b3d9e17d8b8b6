// The timestamp forms Connec! records may carry: extended (`Z`, `+00:00`) and basic (`+0000`)
// offsets, or none (UTC). A form refused here makes a whole notification a 400, and Connec! does
// not send a refused notification again.
import { describe, expect, it } from 'vitest';
import { parseConnecDate, Person, Timestamp } from '../src/index.js';

describe('Timestamp', () => {
  it('accepts the basic offset form (+hhmm) and reads it as the same instant as +hh:mm', () => {
    for (const [value, iso] of [
      ['2016-10-04T00:36:23+0000', '2016-10-04T00:36:23.000Z'],
      ['2016-10-04T00:36+0200', '2016-10-03T22:36:00.000Z'],
      ['2016-10-04T00:36:23.123+0100', '2016-10-03T23:36:23.123Z'],
      ['2016-10-04T06:06:23-0530', '2016-10-04T11:36:23.000Z'],
    ] as const) {
      expect(Timestamp.safeParse(value).success, value).toBe(true);
      expect(parseConnecDate(value).toISOString(), value).toBe(iso);
      const extended = `${value.slice(0, -2)}:${value.slice(-2)}`;
      expect(parseConnecDate(extended).toISOString(), extended).toBe(iso);
    }
  });

  it('still refuses what is not a date-time: out-of-range fields, a bare date, text', () => {
    for (const value of [
      '2016-10-04T00:36:23+2460',
      '2016-13-04T00:36:23+0000',
      '2016-10-04T24:00:00+0000',
      '2024-02-30T00:00:00+0000',
      '2023-02-29T12:00:00+0100',
      '2024-04-31T00:00:00-0500',
      '2016-10-04',
      'May 5',
      '2016-10-04T00:36:23+000',
      '2016-10-04T00:36+000',
    ]) {
      expect(Timestamp.safeParse(value).success, value).toBe(false);
      expect(() => parseConnecDate(value), value).toThrow(/Invalid Connec! timestamp/);
    }
  });

  it('a record whose updated_at has a basic offset is valid, and keeps the string as sent', () => {
    const record = { id: 'p1', first_name: 'Jane', updated_at: '2016-10-04T00:36:23+0000', created_at: '2016-10-04T00:36:23+0000' };
    const parsed = Person.parse(record);
    expect(parsed.updated_at).toBe('2016-10-04T00:36:23+0000');
  });

  it('says what it expected in the issue', () => {
    const result = Timestamp.safeParse('May 5');
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toBe('Invalid ISO datetime');
  });
});
