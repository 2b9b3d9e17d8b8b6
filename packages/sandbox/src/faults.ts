import type { FaultKind, FaultRule } from './types.js';
import { newId } from './util.js';

/** A fault rule as the caller describes it: the stored `FaultRule` without its `id` and `hits`. */
export type FaultInput = Omit<FaultRule, 'id' | 'hits'>;

export class FaultInputError extends Error {}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`);
}

/** Fault injection rules applied to protocol requests (never to /__admin). */
export class FaultInjector {
  readonly rules: FaultRule[] = [];
  readonly #patterns = new Map<string, RegExp>();
  readonly #random: () => number;

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  add(input: FaultInput): FaultRule {
    const kinds: FaultKind[] = ['latency', 'status', 'rate-limit', 'drop', 'truncate'];
    if (!kinds.includes(input.kind)) throw new FaultInputError(`kind must be one of ${kinds.join(', ')}`);
    if (typeof input.path !== 'string' || !input.path.startsWith('/')) throw new FaultInputError('path must be a glob starting with /');
    if (input.rate !== undefined && !(input.rate >= 0 && input.rate <= 1)) throw new FaultInputError('rate must be within [0, 1]');
    if (input.count !== undefined && !(Number.isInteger(input.count) && input.count > 0)) throw new FaultInputError('count must be a positive integer');
    if (input.kind === 'latency' && !(typeof input.latencyMs === 'number' && input.latencyMs >= 0)) throw new FaultInputError('latency needs latencyMs >= 0');
    if (input.kind === 'status' && !(Number.isInteger(input.status) && (input.status ?? 0) >= 400 && (input.status ?? 0) <= 599)) {
      throw new FaultInputError('status needs an HTTP status between 400 and 599');
    }
    const rule: FaultRule = {
      id: newId('flt'),
      path: input.path,
      kind: input.kind,
      hits: 0,
      ...(input.method ? { method: input.method.toUpperCase() } : {}),
      ...(input.latencyMs !== undefined ? { latencyMs: input.latencyMs } : {}),
      ...(input.status !== undefined ? { status: input.status } : {}),
      ...(input.kind === 'rate-limit' ? { retryAfterSeconds: input.retryAfterSeconds ?? 1 } : {}),
      ...(input.rate !== undefined ? { rate: input.rate } : {}),
      ...(input.count !== undefined ? { count: input.count } : {}),
    };
    this.rules.push(rule);
    this.#patterns.set(rule.id, globToRegExp(rule.path));
    return rule;
  }

  remove(id: string): boolean {
    const i = this.rules.findIndex((r) => r.id === id);
    if (i < 0) return false;
    this.rules.splice(i, 1);
    this.#patterns.delete(id);
    return true;
  }

  clear(): void {
    this.rules.length = 0;
    this.#patterns.clear();
  }

  /** The first rule that fires for this request, consuming one of its `count`. */
  match(method: string, path: string): FaultRule | null {
    for (const rule of this.rules) {
      if (rule.method && rule.method !== method.toUpperCase()) continue;
      if (!this.#patterns.get(rule.id)?.test(path)) continue;
      if (rule.count !== undefined && rule.count <= 0) continue;
      if (rule.rate !== undefined && this.#random() >= rule.rate) continue;
      if (rule.count !== undefined) rule.count--;
      rule.hits++;
      return rule;
    }
    return null;
  }
}
