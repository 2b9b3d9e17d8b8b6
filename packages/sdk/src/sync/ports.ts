/**
 * `ConnecPort`: the minimum the sync engine needs from Connec!. The real implementation
 * (`connecPort`, over @org/connec-client) talks HTTP; tests can use an in-memory fake.
 * Every method throws the taxonomy's errors (`ApiError` subclasses, `ConnectionError`).
 */
import type { ConnecRecord } from '../entities/types.js';

export interface ConnecPage {
  records: ConnecRecord[];
  /** `pagination.total` when Connec! sent it. */
  total: number | null;
  /**
   * Whether Connec! announced a next page (`pagination.next`). A page shorter than `$top` is
   * not the last one when it did: Connec! may cap `$top` below what was asked. Leave it out
   * when the port cannot tell; the engine then stops at the first short page.
   */
  hasNextPage?: boolean | undefined;
  /**
   * Records of the page that do not match their collection's schema, by index into `records`
   * (which holds them as Connec! sent them, or `{}` when one was not an object), with what does
   * not match. Each fails on its own (reported, not applied); the rest of the page is applied
   * and paging goes on. Without it, a port rejects such a page as a whole.
   */
  invalid?: ReadonlyMap<number, string> | undefined;
}

export interface ListPageOptions {
  skip: number;
  top: number;
  /** A `$filter` expression (incremental polls: `updated_at gte '<ISO>'`). */
  filter?: string | undefined;
  /** A `$orderby` expression; overrides the port's default order. */
  orderBy?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface BatchOp {
  method: 'post' | 'put';
  groupId: string;
  collection: string;
  /** Connec! id for a `put` (absent for the singular `company` and for `post`). */
  id?: string | undefined;
  /** The record (sent as `{ <collection>: record }`). */
  record: ConnecRecord;
}

export interface BatchOpResult {
  /** The op's HTTP status; null when the op got no answer (the batch request itself failed, or it was not sent). */
  status: number | null;
  /** The record Connec! returned for 2xx results. */
  record: ConnecRecord | null;
  /** A short, safe description of a failure (Connec!'s error titles). */
  error: string | null;
  /**
   * The error of the batch call itself, when the whole call failed (a 429 or 503 after the
   * client's retries): the retry of what the op was for waits the `Retry-After` it carries.
   */
  cause?: unknown;
  /**
   * The op was not sent: its record does not match the collection's schema (a mapper's output
   * the client refuses). It fails again on every retry, like a throwing `toConnec`.
   */
  invalid?: boolean;
}

export interface ConnecPort {
  /**
   * One page of a collection, in a stable order (by creation), `$skip`/`$top` paging. For
   * the singular `company` the page holds the one record (skip 0) or nothing.
   */
  listPage(groupId: string, collection: string, options: ListPageOptions): Promise<ConnecPage>;
  /** One record by Connec! id; null when it does not exist (404). */
  fetch(groupId: string, collection: string, id: string, options?: { signal?: AbortSignal }): Promise<ConnecRecord | null>;
  /** Batch upsert; one result per op, in order. Ops are applied sequentially. */
  batch(ops: BatchOp[], options?: { signal?: AbortSignal }): Promise<BatchOpResult[]>;
}
