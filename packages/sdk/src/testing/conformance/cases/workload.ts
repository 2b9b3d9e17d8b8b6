import { expect } from 'vitest';
import type { JobRecord, StorageAdapter } from '../../../storage/adapter.js';
import type { TestClock } from '../clock.js';
import { seededRandom } from '../../../internal/random.js';

interface Tracked {
  id: string;
  index: number;
  orderingKey: string | null;
  maxAttempts: number;
  holder: { worker: string; leaseExpiresAt: number } | null;
  final: 'done' | 'dead' | null;
}

const LEASE = 1_000;

/**
 * Runs `steps` random queue operations (enqueue with and without ordering/dedupe keys,
 * claims by several workers, completions and failures by the right and the wrong worker,
 * heartbeats, clock moves) and checks the queue invariants after every step:
 * a job is never delivered while another worker holds a live lease on it; jobs of one
 * orderingKey never run concurrently and finish in enqueue order; complete/fail answer
 * according to ownership and attempts; nothing is lost (counts add up).
 */
export async function runJobWorkload(adapter: StorageAdapter, clock: TestClock, seed: number, steps: number) {
  // Deterministic, so a failing workload replays identically.
  const next = seededRandom(seed);
  const pick = <T>(values: readonly T[]): T => {
    const value = values[Math.floor(next() * values.length)];
    if (value === undefined) throw new Error('pick from an empty list');
    return value;
  };
  const workers = ['w0', 'w1', 'w2', 'w3'] as const;
  const orderingKeys = ['k1', 'k2', null, null] as const;
  const jobs = new Map<string, Tracked>();
  const finishedByKey = new Map<string, number[]>();
  let created = 0;
  const type = `workload-${seed}`;
  const where = (step: number, what: string) => `workload seed ${seed}, step ${step}: ${what}`;

  const live = (t: Tracked) => t.holder !== null && t.holder.leaseExpiresAt > clock.ms();

  for (let step = 0; step < steps; step++) {
    const roll = next();
    if (roll < 0.25) {
      const picked = pick(orderingKeys);
      const orderingKey = picked === null ? null : `${type}-${picked}`;
      const dedupeKey = next() < 0.15 ? `${type}-d${Math.floor(next() * 4)}` : null;
      const maxAttempts = 1 + Math.floor(next() * 3);
      const result = await adapter.jobs.enqueue({ type, payload: { step }, orderingKey, dedupeKey, maxAttempts });
      if (result.created) {
        expect(jobs.has(result.id), where(step, 'a new job reused an id')).toBe(false);
        jobs.set(result.id, { id: result.id, index: created++, orderingKey, maxAttempts, holder: null, final: null });
      } else {
        expect(jobs.has(result.id), where(step, 'a deduplicated enqueue returned an unknown id')).toBe(true);
      }
    } else if (roll < 0.55) {
      const worker = pick(workers);
      const limit = 1 + Math.floor(next() * 3);
      const claimed: JobRecord[] = await adapter.jobs.claim({ worker, limit, leaseMs: LEASE, types: [type] });
      expect(claimed.length, where(step, 'claim exceeded its limit')).toBeLessThanOrEqual(limit);
      const keysInBatch = new Set<string>();
      for (const job of claimed) {
        const tracked = jobs.get(job.id);
        expect(tracked, where(step, `claimed unknown job ${job.id}`)).toBeDefined();
        if (!tracked) continue;
        expect(tracked.final, where(step, `claimed a finished job ${job.id}`)).toBeNull();
        expect(live(tracked), where(step, `job ${tracked.index} delivered while another lease is live`)).toBe(false);
        expect(job).toMatchObject({ status: 'running', leaseOwner: worker });
        if (tracked.orderingKey !== null) {
          expect(keysInBatch.has(tracked.orderingKey), where(step, 'two jobs of one key in one batch')).toBe(false);
          keysInBatch.add(tracked.orderingKey);
          for (const other of jobs.values()) {
            if (other === tracked || other.orderingKey !== tracked.orderingKey) continue;
            expect(live(other), where(step, `key ${tracked.orderingKey}: job ${tracked.index} claimed while job ${other.index} runs`)).toBe(false);
            if (other.index < tracked.index) {
              expect(other.final, where(step, `key ${tracked.orderingKey}: job ${tracked.index} claimed before older job ${other.index} finished`)).not.toBeNull();
            }
          }
        }
        tracked.holder = { worker, leaseExpiresAt: job.leaseExpiresAt?.getTime() ?? 0 };
      }
    } else if (roll < 0.85) {
      const held = [...jobs.values()].filter((t) => t.holder !== null && t.final === null);
      if (held.length === 0) continue;
      const tracked = pick(held);
      const holder = tracked.holder;
      if (!holder) continue;
      const wrong = next() < 0.2;
      const worker = wrong ? pick(workers.filter((w) => w !== holder.worker)) : holder.worker;
      const isLive = live(tracked);
      if (next() < 0.6) {
        const completed = await adapter.jobs.complete(tracked.id, worker);
        if (wrong) expect(completed, where(step, 'a non-owner completed a job')).toBe(false);
        else if (isLive) expect(completed, where(step, 'the live owner could not complete')).toBe(true);
        if (completed) {
          tracked.final = 'done';
          tracked.holder = null;
          if (tracked.orderingKey !== null) {
            const finished = finishedByKey.get(tracked.orderingKey) ?? [];
            finished.push(tracked.index);
            finishedByKey.set(tracked.orderingKey, finished);
          }
        }
      } else {
        const retryAt = new Date(clock.ms() + Math.floor(next() * 1_500));
        const outcome = await adapter.jobs.fail(tracked.id, worker, { error: { message: `step ${step}` }, retryAt });
        if (wrong) expect(outcome, where(step, 'a non-owner failed a job')).toBe('lost');
        else if (isLive) expect(outcome, where(step, 'the live owner lost its job')).not.toBe('lost');
        if (outcome !== 'lost') {
          const stored = await adapter.jobs.get(tracked.id);
          const attempts = stored?.attempts ?? 0;
          expect(outcome, where(step, `fail outcome at attempt ${attempts}/${tracked.maxAttempts}`)).toBe(
            attempts >= tracked.maxAttempts ? 'dead' : 'retrying',
          );
          tracked.holder = null;
          if (outcome === 'dead') tracked.final = 'dead';
        }
      }
    } else if (roll < 0.9) {
      const held = [...jobs.values()].filter((t) => live(t));
      if (held.length === 0) continue;
      const tracked = pick(held);
      if (tracked.holder && (await adapter.jobs.heartbeat(tracked.id, tracked.holder.worker, LEASE))) {
        tracked.holder.leaseExpiresAt = clock.ms() + LEASE;
      } else {
        throw new Error(where(step, 'the live owner could not heartbeat'));
      }
    } else {
      clock.advance(Math.floor(next() * 1_500));
    }
  }

  for (const [key, finished] of finishedByKey) {
    expect(finished, `workload seed ${seed}: key ${key} finished out of enqueue order`).toEqual([...finished].sort((a, b) => a - b));
  }
  const counts = await adapter.jobs.counts({ type });
  expect(counts.pending + counts.running + counts.done + counts.dead, `workload seed ${seed}: jobs lost`).toBe(created);
  expect(counts.done).toBe([...jobs.values()].filter((t) => t.final === 'done').length);
  expect(counts.dead).toBe([...jobs.values()].filter((t) => t.final === 'dead').length);
}
