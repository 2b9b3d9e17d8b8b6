/**
 * An in-memory Connec! behind the `ConnecPort` contract, for engine unit tests. It keeps id
 * arrays like Connec! does (the `connec` entry plus one entry per provider+realm), treats a
 * POST carrying a known app id as an upsert, honours `opts.matching_fields`, and merges PUTs.
 */
import { randomUUID } from 'node:crypto';
import { ServerError } from '@org/maestrano-sdk';
import type { ConnecPort, ConnecPortBatchOp, ConnecPortBatchResult, SyncConnecRecord } from '@org/maestrano-sdk';

type IdEntry = { id: string; provider: string; realm: string };

function entries(value: unknown): IdEntry[] {
  return Array.isArray(value)
    ? value.filter(
        (e): e is IdEntry =>
          typeof e === 'object' && e !== null && typeof e.id === 'string' && typeof e.provider === 'string' && typeof e.realm === 'string',
      )
    : [];
}

function mergeIds(a: unknown, b: unknown): IdEntry[] {
  const map = new Map<string, IdEntry>();
  for (const e of [...entries(a), ...entries(b)]) map.set(`${e.provider}|${e.realm}`, e);
  return [...map.values()];
}

const clone = <T>(value: T): T => structuredClone(value);

export class FakeConnec implements ConnecPort {
  readonly orgUid: string;
  /** group -> collection -> records (in creation order). */
  readonly data = new Map<string, Map<string, SyncConnecRecord[]>>();
  readonly batches: ConnecPortBatchOp[][] = [];
  readonly listCalls: { groupId: string; collection: string; skip: number; top: number; filter?: string }[] = [];
  readonly fetchCalls: { collection: string; id: string }[] = [];
  /** Next `listPage` calls throw this many 503s. */
  failLists = 0;
  /** Ops matching this get the returned status (e.g. 400) instead of being applied. */
  rejectOp: ((op: ConnecPortBatchOp) => { status: number; error: string } | null) | null = null;
  private clock = Date.parse('2016-10-04T00:00:00Z');

  constructor(orgUid = 'org-f6zi') {
    this.orgUid = orgUid;
  }

  private collection(groupId: string, name: string): SyncConnecRecord[] {
    let group = this.data.get(groupId);
    if (!group) {
      group = new Map();
      this.data.set(groupId, group);
    }
    let list = group.get(name);
    if (!list) {
      list = [];
      group.set(name, list);
    }
    return list;
  }

  /** Moves Connec!'s clock (later writes, link-backs included, are stamped after `iso`). */
  setClock(iso: string): void {
    this.clock = Date.parse(iso);
  }

  private tick(): string {
    this.clock += 1000;
    return new Date(this.clock).toISOString();
  }

  /** Adds a record as another app would (Connec! assigns the id). Returns the stored copy. */
  seed(groupId: string, collection: string, fields: SyncConnecRecord, connecId: string = randomUUID()): SyncConnecRecord {
    const now = this.tick();
    const record: SyncConnecRecord = {
      created_at: now,
      updated_at: now,
      ...clone(fields),
      id: mergeIds([{ id: connecId, provider: 'connec', realm: this.orgUid }], fields.id),
      group_id: groupId,
      channel_id: this.orgUid,
      resource_type: collection,
    };
    this.collection(groupId, collection).push(record);
    return clone(record);
  }

  /** Changes a record as another app would; bumps `updated_at`. */
  edit(groupId: string, collection: string, connecId: string, patch: SyncConnecRecord): SyncConnecRecord {
    const record = this.find(groupId, collection, connecId);
    if (!record) throw new Error(`no ${collection} ${connecId}`);
    Object.assign(record, clone(patch), { updated_at: this.tick() });
    return clone(record);
  }

  find(groupId: string, collection: string, connecId: string): SyncConnecRecord | undefined {
    return this.collection(groupId, collection).find((r) => entries(r.id).some((e) => e.provider === 'connec' && e.id === connecId));
  }

  all(groupId: string, collection: string): SyncConnecRecord[] {
    return clone(this.collection(groupId, collection));
  }

  async listPage(groupId: string, collection: string, options: { skip: number; top: number; filter?: string | undefined; orderBy?: string | undefined }) {
    this.listCalls.push({ groupId, collection, skip: options.skip, top: options.top, ...(options.filter ? { filter: options.filter } : {}) });
    if (this.failLists > 0) {
      this.failLists--;
      throw new ServerError('Connec! unavailable', { service: 'connec', status: 503, method: 'GET', url: `/${groupId}/${collection}` });
    }
    let list = this.collection(groupId, collection);
    // The one filter and order incremental polls use: `updated_at gte '<ISO>'`, `updated_at ASC` (PROTOCOL §6.4 spells the direction in capitals).
    const since = options.filter ? /^updated_at gte '([^']+)'$/.exec(options.filter) : null;
    if (options.filter && !since) throw new Error(`fake Connec!: unsupported $filter ${options.filter}`);
    if (since?.[1]) {
      const from = Date.parse(since[1]);
      list = list.filter((r) => Date.parse(String(r.updated_at)) >= from);
    }
    if (options.orderBy === 'updated_at ASC') list = [...list].sort((a, b) => Date.parse(String(a.updated_at)) - Date.parse(String(b.updated_at)));
    if (options.orderBy === 'updated_at DESC') list = [...list].sort((a, b) => Date.parse(String(b.updated_at)) - Date.parse(String(a.updated_at)));
    return { records: clone(list.slice(options.skip, options.skip + options.top)), total: list.length };
  }

  async fetch(groupId: string, collection: string, id: string) {
    this.fetchCalls.push({ collection, id });
    const record = this.find(groupId, collection, id);
    return record ? clone(record) : null;
  }

  async batch(ops: ConnecPortBatchOp[]): Promise<ConnecPortBatchResult[]> {
    this.batches.push(clone(ops));
    return ops.map((op) => {
      const rejected = this.rejectOp?.(op) ?? null;
      if (rejected) return { status: rejected.status, record: null, error: rejected.error };
      const list = this.collection(op.groupId, op.collection);
      const { opts, ...fields } = op.record;
      if (op.method === 'put') {
        const target = op.id ? this.find(op.groupId, op.collection, op.id) : list[0];
        if (!target) return { status: 404, record: null, error: 'Resource not found' };
        const ids = mergeIds(target.id, fields.id);
        Object.assign(target, clone(fields), { id: ids, updated_at: this.tick() });
        return { status: 200, record: clone(target), error: null };
      }
      // post: an upsert keyed on any app id entry, then smart merge on matching fields
      const appIds = entries(fields.id).filter((e) => e.provider !== 'connec');
      let target = list.find((r) => entries(r.id).some((e) => appIds.some((a) => a.provider === e.provider && a.realm === e.realm && a.id === e.id)));
      const matching = typeof opts === 'object' && opts !== null && 'matching_fields' in opts ? opts.matching_fields : undefined;
      if (!target && Array.isArray(matching) && matching.length > 0) {
        target = list.find((r) => matching.every((f) => typeof f === 'string' && r[f] !== undefined && r[f] === fields[f]));
      }
      if (target) {
        const ids = mergeIds(target.id, fields.id);
        Object.assign(target, clone(fields), { id: ids, updated_at: this.tick() });
        return { status: 200, record: clone(target), error: null };
      }
      const created = this.seed(op.groupId, op.collection, fields);
      return { status: 201, record: created, error: null };
    });
  }
}
