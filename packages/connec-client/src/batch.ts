/**
 * `POST {host}/batch` (not under the API base path): many creates/updates in one call, answered
 * with one result per op in op order (PROTOCOL §6.8).
 */
import {
  apiErrorFromStatus,
  type IssueSummary,
  isMaestranoError,
  type MaestranoError,
  PayloadValidationError,
  ResponseValidationError,
} from './errors.js';
import { checkRequestOptions, type RequestOptions, readJson } from './http/kernel.js';
import { parseRecordEnvelope } from './internal/envelope.js';
import { checkInput, checkSegment, type ClientContext, type RecordId, recordSchema, resolveId } from './resources.js';
import type { RecordInput, RecordOf } from './schemas/catalog.js';

/** Create a record in a group's collection. */
export interface BatchCreateOp<K extends string = string> {
  method: 'post';
  group: string;
  collection: K;
  record: RecordInput<K>;
}

/** Update a record (`id` required, except for the singular `company`). */
export interface BatchUpdateOp<K extends string = string> {
  method: 'put';
  group: string;
  collection: K;
  id?: RecordId;
  record: RecordInput<K>;
}

export type BatchOp<K extends string = string> = BatchCreateOp<K> | BatchUpdateOp<K>;
/** An op inside `client.group(g).batch(...)`: the group comes from the scope. */
export type GroupBatchOp<K extends string = string> =
  | Omit<BatchCreateOp<K>, 'group'>
  | Omit<BatchUpdateOp<K>, 'group'>;

export interface BatchSuccess<K extends string = string> {
  ok: true;
  /** Position of the op in the `ops` array. */
  index: number;
  op: BatchOp<K>;
  status: number;
  record: RecordOf<K>;
}

export interface BatchFailure<K extends string = string> {
  ok: false;
  index: number;
  op: BatchOp<K>;
  /** The op's own status, or `undefined` when the whole chunk failed. */
  status: number | undefined;
  error: MaestranoError;
  /**
   * Whether the request carrying the op was dispatched to Connec!. `false` when it never left:
   * ops after a chunk that failed as a whole, and a chunk whose `signal` was aborted before its
   * request went out (already aborted at the call, or aborted between two chunks); nothing of it
   * was applied. `true` with a `ConnectionError` means the outcome is unknown (it may have been
   * applied); `true` with an op `status` is Connec!'s answer for that op.
   */
  sent: boolean;
}

export type BatchResult<K extends string = string> = BatchSuccess<K> | BatchFailure<K>;

export interface BatchOptions extends RequestOptions {
  /** Ask Connec! to apply the ops in order. @default true */
  sequential?: boolean;
  /** Ops per request. @default 50 */
  chunkSize?: number;
  /**
   * The batch is safe to repeat, so failed requests are retried. A batch of only `put` ops
   * is always treated as safe. Without it, a chunk is retried only on a 429 (Connec! did not
   * process it). @default false
   */
  idempotent?: boolean;
}

export const DEFAULT_BATCH_CHUNK_SIZE = 50;
const MAX_CHUNK_SIZE = 1000;

interface WireOp {
  method: 'post' | 'put';
  url: string;
  params: Record<string, unknown>;
}

function invalid(issues: IssueSummary[]): PayloadValidationError {
  const head = issues
    .slice(0, 5)
    .map((i) => `${i.path}: ${i.message}`)
    .join('; ');
  return new PayloadValidationError(`Invalid batch: ${head}${issues.length > 5 ? '; ...' : ''}`, { issues });
}

function toWire<K extends string>(op: BatchOp<K>, basePath: string, index: number, issues: IssueSummary[]): WireOp | undefined {
  const at = `ops/${index}`;
  if (typeof op !== 'object' || op === null) {
    issues.push({ path: at, message: 'expected an op object' });
    return undefined;
  }
  if (op.method !== 'post' && op.method !== 'put') {
    issues.push({ path: `${at}/method`, message: 'expected "post" or "put"' });
    return undefined;
  }
  const before = issues.length;
  const collect = (fn: () => void) => {
    try {
      fn();
    } catch (error) {
      if (error instanceof PayloadValidationError) {
        for (const issue of error.issues) issues.push({ path: issue.path ? `${at}/${issue.path}` : at, message: issue.message });
      } else throw error;
    }
  };
  collect(() => checkSegment(op.group, 'group'));
  collect(() => checkSegment(op.collection, 'collection'));
  let id: string | undefined;
  if (op.method === 'put' && op.collection !== 'company') {
    const raw: RecordId | undefined = op.id;
    collect(() => {
      id = resolveId(raw);
    });
  }
  if (issues.length === before) collect(() => checkInput(op.collection, op.record, ['record']));
  if (issues.length !== before) return undefined;
  const path = `${basePath}/${encodeURIComponent(op.group)}/${op.collection}`;
  const url =
    op.method === 'post' ? `${path}/` : op.collection === 'company' ? path : `${path}/${id ?? ''}`;
  return { method: op.method, url, params: { [op.collection]: op.record } };
}

/** Run ops through `{host}/batch` in chunks, returning exactly one result per op, in order. */
export async function runBatch<K extends string>(
  ctx: ClientContext & { readonly batchUrl: string; readonly basePath: string },
  ops: readonly BatchOp<K>[],
  options: BatchOptions = {},
): Promise<BatchResult<K>[]> {
  if (!Array.isArray(ops)) throw invalid([{ path: 'ops', message: 'expected an array of ops' }]);
  // Bad per-call options reject the whole call, as they do for create(): no op is reported failed.
  checkRequestOptions(options);
  const chunkSize = options.chunkSize ?? DEFAULT_BATCH_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
    throw invalid([{ path: 'chunkSize', message: `expected an integer in 1..${MAX_CHUNK_SIZE}` }]);
  }
  const issues: IssueSummary[] = [];
  const wire = ops.map((op, index) => toWire(op, ctx.basePath, index, issues));
  if (issues.length > 0) throw invalid(issues);

  const sequential = options.sequential ?? true;
  const results: BatchResult<K>[] = [];
  let stopped: MaestranoError | undefined;
  for (let start = 0; start < ops.length; start += chunkSize) {
    const chunkOps = ops.slice(start, start + chunkSize);
    if (stopped) {
      const error = stopped;
      chunkOps.forEach((op, i) => {
        results.push({ ok: false, index: start + i, op, status: undefined, error, sent: false });
      });
      continue;
    }
    const chunkWire = wire.slice(start, start + chunkSize);
    // Set by the kernel when an attempt is handed to fetch: a chunk that fails before that (its
    // signal already aborted) was not sent.
    let dispatched = false;
    try {
      const response = await ctx.kernel.request({
        method: 'POST',
        url: ctx.batchUrl,
        body: { sequential, ops: chunkWire },
        options: { ...options, idempotent: options.idempotent === true || chunkOps.every((op) => op.method === 'put') },
        onDispatch: () => {
          dispatched = true;
        },
      });
      results.push(...readResults<K>(readJson(response, 'POST'), chunkOps, start, ctx.origin));
    } catch (error) {
      if (!isMaestranoError(error)) throw error;
      const failure = error;
      const sent = dispatched;
      chunkOps.forEach((op, i) => {
        results.push({ ok: false, index: start + i, op, status: undefined, error: failure, sent });
      });
      stopped = failure;
    }
  }
  return results;
}

function readResults<K extends string>(
  body: unknown,
  ops: readonly BatchOp<K>[],
  start: number,
  origin: string,
): BatchResult<K>[] {
  const list =
    typeof body === 'object' && body !== null && !Array.isArray(body)
      ? (body as Record<string, unknown>).results
      : undefined;
  if (!Array.isArray(list) || list.length !== ops.length) {
    throw new ResponseValidationError(
      `Connec! batch answered ${Array.isArray(list) ? `${list.length} results for ${ops.length} ops` : 'without a results array'}`,
      { issues: [{ path: 'results', message: `expected an array of ${ops.length} results` }], body },
    );
  }
  return ops.map((op, i): BatchResult<K> => {
    const index = start + i;
    const entry = list[i];
    const item = typeof entry === 'object' && entry !== null ? (entry as Record<string, unknown>) : {};
    const status = typeof item.status === 'number' ? item.status : Number(item.status);
    const method = op.method.toUpperCase();
    const url = `${origin}/batch#ops/${index}`;
    if (!Number.isInteger(status)) {
      const error = new ResponseValidationError(`Connec! batch result ${index} has no status`, {
        issues: [{ path: `results/${i}/status`, message: 'expected an HTTP status' }],
        body: entry,
      });
      return { ok: false, index, op, status: undefined, error, sent: true };
    }
    if (status < 200 || status > 299) {
      const error = apiErrorFromStatus({ service: 'connec', status, method, url, body: item.body });
      return { ok: false, index, op, status, error, sent: true };
    }
    try {
      const record = parseRecordEnvelope(item.body, op.collection, recordSchema(op.collection), `Connec! batch result ${index}`);
      return { ok: true, index, op, status, record };
    } catch (error) {
      if (error instanceof ResponseValidationError) return { ok: false, index, op, status, error, sent: true };
      throw error;
    }
  });
}
