/**
 * Observability of the sync engine: counters, typed events and the SyncReport. Nothing here
 * is needed for correctness; counters are per process. Logs go through the runtime logger,
 * which redacts credentials, behind `syncLogger`, which also redacts personal fields; the
 * engine only ever logs ids.
 */
import type { Logger } from '../core/types.js';
import { redactByKey } from '../config/redact.js';

export interface SyncCounters {
  /** Notification records received by the route. */
  received: number;
  /** Notification records stored as new jobs (a record counts once, however many entities take it). */
  accepted: number;
  /** Notification records that were exact duplicates of stored jobs. */
  duplicates: number;
  /** Records written locally (created + updated). */
  applied: number;
  created: number;
  updated: number;
  skippedReplay: number;
  skippedStale: number;
  skippedEcho: number;
  /** Disabled entity/direction, unknown or cancelled group, filtered, tombstoned, before `importSince`. */
  skippedOther: number;
  /**
   * Times a record was parked until a reference is known: per attempt, so a record parked on
   * each of its attempts before it was applied (or dead-lettered) counts each time.
   */
  parked: number;
  /** Failed attempts (retried with backoff). */
  failed: number;
  deadLettered: number;
  /** Records linked back to Connec! (our id added to their id array). */
  linked: number;
  pushed: number;
  pushFailed: number;
  /** Conflicts resolved: per attempt, so one whose winning push failed and was retried counts again. */
  conflicts: number;
}

export function emptyCounters(): SyncCounters {
  return {
    received: 0,
    accepted: 0,
    duplicates: 0,
    applied: 0,
    created: 0,
    updated: 0,
    skippedReplay: 0,
    skippedStale: 0,
    skippedEcho: 0,
    skippedOther: 0,
    parked: 0,
    failed: 0,
    deadLettered: 0,
    linked: 0,
    pushed: 0,
    pushFailed: 0,
    conflicts: 0,
  };
}

export type SyncEvent =
  | { type: 'import.progress'; tenant: string; groupId: string; entity: string; done: number; total: number | null }
  | { type: 'import.completed'; tenant: string; groupId: string; report: SyncReport }
  | {
      type: 'record.applied';
      tenant: string;
      groupId: string;
      entity: string;
      connecId: string;
      localId: string;
      action: 'created' | 'updated';
    }
  | { type: 'record.skipped'; tenant: string; groupId: string; entity: string; connecId: string; reason: SkipReason }
  | { type: 'record.parked'; tenant: string; groupId: string; entity: string; connecId: string; waitingFor: string }
  | {
      type: 'record.failed';
      tenant: string;
      groupId: string;
      entity: string;
      connecId: string | null;
      error: { code: string; message: string };
      deadLettered: boolean;
    }
  | {
      type: 'conflict';
      tenant: string;
      groupId: string;
      entity: string;
      connecId: string;
      localId: string;
      winner: 'connec' | 'local' | 'merged';
    }
  | {
      type: 'record.pushed';
      tenant: string;
      groupId: string;
      entity: string;
      localId: string;
      connecId: string | null;
      status: number;
      ok: boolean;
    }
  /** A cancelled group's sync state was dropped: how many id maps and cursors were removed (0 and 0 when repeated). */
  | { type: 'group.purged'; tenant: string; groupId: string; idMaps: number; cursors: number; deadLetters: number };

export type SkipReason =
  | 'replay'
  | 'stale'
  | 'echo'
  | 'unchanged'
  | 'disabled'
  | 'unknown_group'
  | 'filtered'
  | 'tombstoned'
  | 'before_import_since'
  | 'local_wins';

export interface RecordFailure {
  entity: string;
  direction: 'inbound' | 'outbound';
  connecId: string | null;
  localId: string | null;
  code: string;
  message: string;
}

export interface EntityReport {
  /** Connec! records read. */
  fetched: number;
  /** Records created locally (`local.create`/`createMany`). */
  created: number;
  /** Records already known, updated locally. */
  updated: number;
  /** Records left as they were (unchanged, stale, tombstoned, before `importSince`; see `record.skipped`). */
  skipped: number;
  /**
   * Records handed to the durable inbox, where they are retried: parked on a reference, busy,
   * failed (also counted in `failed`), or applied but not yet linked back (a `link_failed`
   * failure; also counted in `created` or `updated`).
   */
  deferred: number;
  /** Link-backs (our id sent to Connec!) that succeeded. */
  linked: number;
  /** Local records pushed during the import's outbound half (smart merge). */
  pushed: number;
  /** Records whose mapper, local write or push failed (each one is in `failures`). */
  failed: number;
}

export interface SyncReport {
  tenant: string;
  groupId: string;
  status: 'complete' | 'partial';
  startedAt: Date;
  finishedAt: Date;
  entities: Record<string, EntityReport>;
  /** Per-record failures with their causes (these records were not lost: see `deferred`). */
  failures: RecordFailure[];
}

export function emptyEntityReport(): EntityReport {
  return { fetched: 0, created: 0, updated: 0, skipped: 0, deferred: 0, linked: 0, pushed: 0, failed: 0 };
}

const PERSONAL =
  /e-?mail|phone|mobile|landline|fax|address|(first|last|middle|given|family|full|display|user|nick|maiden)_?name|surname|birth|^name$|line1|line2|postal|contact_?channel|skype|linkedin|twitter|facebook|gender|social_?security|ssn|passport|^notes?$/i;
const SECRET = /pass(word)?|secret|token|authori[sz]ation|api_?key|credential|cookie|session/i;

/** Redacts personal fields (emails, phones, names, addresses) and credentials, recursively, by key. */
export function redactPersonalFields(fields: Record<string, unknown>): Record<string, unknown> {
  return redactByKey(fields, (key) => PERSONAL.test(key) || SECRET.test(key));
}

/** The sync module's logger: the runtime logger behind personal-field redaction. */
export function syncLogger(inner: Logger): Logger {
  const wrap =
    (level: keyof Logger) =>
    (message: string, fields?: Record<string, unknown>): void => {
      inner[level](message, fields === undefined ? undefined : redactPersonalFields(fields));
    };
  return { debug: wrap('debug'), info: wrap('info'), warn: wrap('warn'), error: wrap('error') };
}
