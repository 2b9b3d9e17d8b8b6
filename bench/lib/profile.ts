/**
 * `BENCH_PROFILE=1`: wraps every storage repository method and prints, on exit, how many calls
 * each got and their mean latency (stderr). Costs nothing when the variable is unset.
 */
import { performance } from 'node:perf_hooks';
import type { StorageAdapter } from '@org/maestrano-sdk';

export function profileStorage(storage: StorageAdapter, label = ''): StorageAdapter {
  if (!process.env.BENCH_PROFILE) return storage;
  const profile = new Map<string, { n: number; ms: number }>();
  for (const repoName of ['idMaps', 'locks', 'jobs', 'cursors', 'groups', 'users', 'ledger', 'replay'] as const) {
    const repo = (storage as unknown as Record<string, Record<string, unknown>>)[repoName];
    if (!repo) continue;
    for (const key of Object.keys(repo)) {
      const fn = repo[key];
      if (typeof fn !== 'function') continue;
      repo[key] = async (...args: unknown[]) => {
        const t = performance.now();
        try {
          return await fn.apply(repo, args);
        } finally {
          const entry = profile.get(`${repoName}.${key}`) ?? { n: 0, ms: 0 };
          entry.n++;
          entry.ms += performance.now() - t;
          profile.set(`${repoName}.${key}`, entry);
        }
      };
    }
  }
  process.on('exit', () => {
    const lines = [...profile].map(([k, v]) => `${label}${k}: n=${v.n} avg=${(v.ms / v.n).toFixed(2)}ms total=${(v.ms / 1000).toFixed(1)}s`);
    process.stderr.write(`${lines.join('\n')}\n`);
  });
  return storage;
}
