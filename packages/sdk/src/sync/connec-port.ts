import {
  ApiError,
  type ConnecClient,
  checkInput,
  createConnecClient,
  isMaestranoError,
  NotFoundError,
  PayloadValidationError,
  ResponseValidationError,
} from '@org/connec-client';
import type { Tenant } from '../core/types.js';
import type { ConnecRecord } from '../entities/types.js';
import type { BatchOpResult, ConnecPort } from './ports.js';
import { connecIdOf } from './records.js';

/** The most ops `sync.batchSize` allows, which is also the client's largest chunk. */
const MAX_BATCH_OPS = 1000;

/** The Connec! client of a tenant (Basic auth with its api id/key, external ids on). */
export function connecClientFor(tenant: Tenant, fetchImpl?: typeof fetch): ConnecClient {
  return createConnecClient({
    host: tenant.connec.host,
    basePath: tenant.connec.basePath,
    credentials: { apiId: tenant.api.id, apiKey: tenant.api.key },
    externalIds: true,
    timeoutMs: tenant.connec.timeoutMs,
    ...(fetchImpl ? { fetch: fetchImpl } : {}),
  });
}

/** `ConnecPort` over @org/connec-client (retries, `Retry-After`, typed errors are the client's). */
export function connecPort(client: ConnecClient, options: { orderBy?: string } = {}): ConnecPort {
  return {
    async listPage(groupId, collection, { skip, top, filter, orderBy, signal }) {
      const requestOptions = signal ? { signal } : {};
      if (collection === 'company') {
        if (skip > 0) return { records: [], total: 1 };
        try {
          const record: ConnecRecord = await client.group(groupId).company.retrieve(requestOptions);
          return { records: [record], total: 1 };
        } catch (error) {
          if (error instanceof NotFoundError) return { records: [], total: 0 };
          // A company that does not match its schema fails on its own, as a listed record does
          // (below): kept as Connec! sent it and marked, instead of stopping the whole import.
          // A body that is not JSON, or holds no company record, still stops the run.
          const raw = error instanceof ResponseValidationError ? rawRecordOf(error.body, 'company') : null;
          if (raw !== null) return { records: [raw], total: 1, invalid: new Map([[0, (error as Error).message]]) };
          throw error;
        }
      }
      // A record that does not match its schema fails on its own: kept in place (paging counts
      // it), marked, and left out of what is applied, instead of rejecting its whole page.
      const invalid = new Map<number, { record: unknown; message: string }>();
      const page = await client
        .group(groupId)
        .collection(collection)
        .list(
          {
            skip,
            top,
            ...(filter ? { filter } : {}),
            ...((orderBy ?? options.orderBy) ? { orderBy: orderBy ?? options.orderBy } : {}),
          },
          { ...requestOptions, onInvalidRecord: ({ index, record, message }) => invalid.set(index, { record, message }) },
        );
      const total = page.total ?? null;
      if (invalid.size === 0) return { records: page.data, total, hasNextPage: page.hasNextPage() };
      const records: ConnecRecord[] = [];
      const reasons = new Map<number, string>();
      let valid = 0;
      for (let i = 0; i < page.data.length + invalid.size; i++) {
        const bad = invalid.get(i);
        if (!bad) records.push(page.data[valid++] as ConnecRecord);
        else {
          reasons.set(i, bad.message);
          records.push(typeof bad.record === 'object' && bad.record !== null && !Array.isArray(bad.record) ? (bad.record as ConnecRecord) : {});
        }
      }
      return { records, total, hasNextPage: page.hasNextPage(), invalid: reasons };
    },
    async fetch(groupId, collection, id, requestOptions = {}) {
      try {
        if (collection === 'company') return await client.group(groupId).company.retrieve(requestOptions);
        const record: ConnecRecord = await client.group(groupId).collection(collection).retrieve(id, requestOptions);
        return record;
      } catch (error) {
        if (error instanceof NotFoundError) return null;
        throw error;
      }
    },
    async batch(allOps, requestOptions = {}) {
      // The client refuses a whole call when one op's record does not match its collection's
      // schema (nothing is sent): such an op fails alone here, and the others are still sent.
      const refused = new Map<number, string>();
      allOps.forEach((op, i) => {
        try {
          checkInput(op.collection, op.record);
        } catch (error) {
          if (!(error instanceof PayloadValidationError)) throw error;
          refused.set(i, error.message);
        }
      });
      const ops = refused.size === 0 ? allOps : allOps.filter((_op, i) => !refused.has(i));
      if (ops.length === 0) return allOps.map((_op, i): BatchOpResult => ({ status: null, record: null, error: refused.get(i) ?? null, invalid: true }));
      // Every op carries our id in its `id` array, so a repeated post cannot create a second
      // record: Connec! merges it or answers 409 (the sandbox does), which the engine resolves
      // by finding the record and linking it (`recoverCreate`).
      const results = await client.batch(
        ops.map((op) =>
          op.method === 'post'
            ? { method: 'post' as const, group: op.groupId, collection: op.collection, record: op.record }
            : { method: 'put' as const, group: op.groupId, collection: op.collection, id: op.id, record: op.record },
        ),
        {
          sequential: true,
          idempotent: true,
          // The engine already cuts calls at its `batchSize`: one call per `batch()`, whatever
          // the client's default chunk.
          chunkSize: Math.min(Math.max(ops.length, 1), MAX_BATCH_OPS),
          ...(requestOptions.signal ? { signal: requestOptions.signal } : {}),
        },
      );
      const answers = results.map((result): BatchOpResult => {
        if (result.ok) return { status: result.status, record: result.record, error: null };
        // Connec! applied the op but its answer does not match the collection's schema: the
        // record as answered still names the Connec! id (and `updated_at`) the push must link,
        // instead of failing a created record whose id would then be unknown. Such a record,
        // when notified, fails alone like any record not matching its schema.
        if (result.status !== undefined && result.status >= 200 && result.status < 300 && result.error instanceof ResponseValidationError) {
          const raw = rawRecordOf(result.error.body, result.op.collection);
          if (raw !== null && connecIdOf(raw.id) !== null) return { status: result.status, record: raw, error: null };
        }
        const message = isMaestranoError(result.error) ? result.error.message : 'batch op failed';
        // A status error of the whole call (400, 401, 503 ...) is that status for each of its
        // ops: a permanent refusal must not read as "no answer", which is retried as transient.
        // A call with no readable answer (connection lost, malformed results) stays null.
        const status = result.status ?? (result.error instanceof ApiError ? result.error.status : null);
        // The call's own error (its `retryAfterMs`) goes along: dropped, a link-back refused with
        // 429 and `Retry-After: 90` was retried after the worker's short backoff.
        return result.status === undefined ? { status, record: null, error: message, cause: result.error } : { status, record: null, error: message };
      });
      if (refused.size === 0) return answers;
      let sent = 0;
      return allOps.map((_op, i): BatchOpResult => {
        const message = refused.get(i);
        return message !== undefined ? { status: null, record: null, error: message, invalid: true } : (answers[sent++] as BatchOpResult);
      });
    },
  };
}

/** The record object under `key` in a Connec! answer body (`{ people: {...} }`, or a one-element array), or null. */
function rawRecordOf(body: unknown, key: string): ConnecRecord | null {
  let raw = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[key] : undefined;
  if (Array.isArray(raw) && raw.length === 1) raw = raw[0];
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as ConnecRecord) : null;
}
