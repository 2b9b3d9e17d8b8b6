import { randomBytes, randomUUID } from 'node:crypto';

/** mulberry32: small deterministic PRNG for the seed generator. */
export function createRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

export function randomSuffix(length = 8): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += ALPHABET[b % 36];
  return out;
}

export function newId(prefix: string): string {
  return `${prefix}-${randomSuffix(8)}`;
}

export function newUuid(): string {
  return randomUUID();
}

export function newSecret(bytes = 24): string {
  return randomBytes(bytes).toString('hex');
}

/** A UUID v4-shaped string drawn from a deterministic generator. */
export function seededUuid(rand: () => number): string {
  let hex = '';
  for (let i = 0; i < 4; i++) hex += Math.floor(rand() * 4294967296).toString(16).padStart(8, '0');
  const variant = ((Number.parseInt(hex[16] ?? '0', 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * An ISO-8601 date or date-time: `YYYY-MM-DD`, then optionally `T` (or a space), `hh:mm[:ss[.fff]]` and
 * an offset `Z`, `±hh:mm` or `±hhmm`.
 */
const ISO_DATE_TIME = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * The instant (ms since the epoch, `NaN` when unreadable) an ISO-8601 date or date-time denotes.
 * One without an offset is UTC (Connec! and the platform run in UTC, PROTOCOL §6.7), never the
 * host's local time zone, which is what `Date.parse` would read it as. Other strings are read by
 * `Date.parse`.
 */
export function parseInstant(value: string): number {
  const m = ISO_DATE_TIME.exec(value.trim());
  if (!m) return Date.parse(value);
  const [, date, time, offset] = m;
  if (time === undefined) return Date.parse(`${date}T00:00:00Z`);
  const zone = offset === undefined ? 'Z' : offset.toUpperCase() === 'Z' ? 'Z' : offset.includes(':') ? offset : `${offset.slice(0, 3)}:${offset.slice(3)}`;
  return Date.parse(`${date}T${time}${zone}`);
}

/** Issues ISO UTC timestamps that strictly increase across calls. */
export class MonotonicClock {
  #last = 0;
  observe(iso: string): void {
    const t = parseInstant(iso);
    if (Number.isFinite(t) && t > this.#last) this.#last = t;
  }
  next(): string {
    let t = Date.now();
    if (t <= this.#last) t = this.#last + 1;
    this.#last = t;
    return new Date(t).toISOString();
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
