import type { StorageOperation } from '@org/maestrano-sdk';
import type { Executor } from '../client.js';
import { raw } from '../sql.js';

/** Scope sizes (rows written by this process) at which the statistics are refreshed. */
export const REFRESH_AT: readonly number[] = [1_000, 10_000, 100_000];

/** How many scopes are remembered; past it the counts start over (a refresh more, never one less). */
const MAX_SCOPES = 10_000;

/**
 * Least time between the starts of two refreshes: when many groups import at once, their
 * crossings share one ANALYZE instead of running them back to back.
 */
export const MIN_INTERVAL_MS = 5_000;

/**
 * Keeps PostgreSQL's planner statistics of the id-map table fresh while a scope grows.
 *
 * PostgreSQL chooses an index from statistics gathered by ANALYZE. For a scope that grew
 * since the last ANALYZE (a fresh database during the first import, or a new group's first
 * import into a table that already holds other groups) it has none, assumes the scope holds
 * a row or two, and answers every id-map lookup by walking the whole scope through the
 * paging index instead of probing the unique index: a 50,000-record import spent more time
 * in those lookups than in everything else PostgreSQL did. autovacuum fixes the statistics,
 * but only when it next visits the database (`autovacuum_naptime`, a minute by default) and,
 * in a big table, only after a tenth of the table has changed.
 *
 * So when a scope this process writes to crosses 1,000, 10,000 and 100,000 rows, the adapter
 * runs `ANALYZE` on the lookup columns, in the background: it reads a sample of the table
 * (a few tens of ms), blocks no reader or writer, and a failure (a role that does not own
 * the table gets a warning, not an error) only means the refresh did not happen. One runs
 * at a time, at most one every `MIN_INTERVAL_MS`; crossings in between share the next one.
 */
export class StatisticsRefresher {
  private readonly counts = new Map<string, number>();
  private running: Promise<void> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private again = false;
  private lastStartedAt = Number.NEGATIVE_INFINITY;
  /** Refreshes run so far (tests, diagnostics). */
  refreshes = 0;

  constructor(
    private readonly db: Executor,
    private readonly enabled: boolean,
  ) {}

  /** Notes `added` new rows in `scope` (any string naming the scope); may start a refresh. */
  noteInserted(scope: string, added: number): void {
    if (!this.enabled || added <= 0) return;
    const before = this.counts.get(scope) ?? 0;
    const after = before + added;
    if (this.counts.size >= MAX_SCOPES && before === 0) this.counts.clear();
    this.counts.set(scope, after);
    if (REFRESH_AT.some((at) => before < at && after >= at)) this.refresh();
  }

  /**
   * Resolves once no refresh is running (tests; `close()`). A refresh still waiting for its
   * turn (see `MIN_INTERVAL_MS`) is dropped: statistics are an optimisation.
   */
  async settled(): Promise<void> {
    for (;;) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = null;
      }
      this.again = false;
      if (!this.running) return;
      await this.running;
    }
  }

  private refresh(): void {
    if (this.running || this.timer) {
      // One at a time; crossings meanwhile (many groups importing at once) share one more.
      this.again = true;
      return;
    }
    const wait = this.lastStartedAt + MIN_INTERVAL_MS - Date.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.start();
      }, wait);
      this.timer.unref?.();
      return;
    }
    this.start();
  }

  private start(): void {
    const op: StorageOperation = 'idMaps.insertMany';
    this.again = false;
    this.lastStartedAt = Date.now();
    this.running = (async () => {
      try {
        await this.db.execute(op, raw('ANALYZE maestrano_id_maps (tenant, group_id, entity, connec_id, local_id)')).catch(() => 0);
        this.refreshes++;
      } finally {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.refresh();
        }
      }
    })();
  }
}
