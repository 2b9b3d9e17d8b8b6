/**
 * What the seeded model tests share: the seeds to run (fixed ones, or `MODEL_SEEDS` /
 * `MODEL_STEPS` from the environment to replay) and a PRNG with the draws they make.
 */
import { seededRandom } from '../src/internal/random.js';

/** `MODEL_SEEDS=7,12 MODEL_STEPS=80` replays those seeds; otherwise `fixed`. */
export function modelSeeds(fixed: [number, number][]): [number, number][] {
  const seeds = process.env['MODEL_SEEDS'];
  if (!seeds) return fixed;
  return seeds.split(',').map((s) => [Number(s), Number(process.env['MODEL_STEPS'] ?? 40)]);
}

export interface ModelRandom {
  next(): number;
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
}

/** The project's deterministic PRNG (mulberry32): a failing seed replays identically. */
export function rng(seed: number): ModelRandom {
  const next = seededRandom(seed);
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (items) => items[Math.floor(next() * items.length)]!,
    chance: (p) => next() < p,
  };
}
