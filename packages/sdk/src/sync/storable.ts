/**
 * What a Connec! record must satisfy before the sync stores anything of it. Its ids become parts
 * of storage keys (dedupe, ordering, lock and wait keys, id maps) and the record itself a job
 * payload: every adapter refuses text holding a NUL character or an unpaired UTF-16 surrogate
 * (PostgreSQL cannot store it), and PostgreSQL refuses an index entry over 2,704 bytes. The
 * notification route refuses such a record (a 400); an import, a poll or a fetch fails it on its
 * own, like a record that does not match its schema. One set of rules for both.
 */
import type { AnyEntity, ConnecRecord } from '../entities/types.js';
import { isStorableText } from '../storage/validation.js';
import { connecIdOf, valuesAt } from './records.js';

/** Connec! ids are UUIDs and group ids short tokens; far below this. */
export const MAX_ID_LENGTH = 255;

/** Connec! records nest a few levels (lines > linked transactions > id arrays); far below this. */
export const MAX_RECORD_DEPTH = 64;

/**
 * The longest local id (the app's own) in UTF-8 bytes: every adapter stores longer ones, but an
 * id map's index entry (tenant, group, entity and this id) must stay well inside PostgreSQL's
 * limit of about 2,700 bytes. Connec! ids keep their tighter `MAX_ID_LENGTH`.
 */
export const MAX_LOCAL_ID_BYTES = 1024;

/** Whether a local id (the app's own) can key storage: non-empty, storable, at most `MAX_LOCAL_ID_BYTES`. */
export function usableLocalId(id: string | null | undefined): id is string {
  return typeof id === 'string' && id !== '' && isStorableText(id) && Buffer.byteLength(id, 'utf8') <= MAX_LOCAL_ID_BYTES;
}

/** Whether an id can key storage: a non-empty, storable string of at most `MAX_ID_LENGTH` characters. */
export function usableId(id: string | null | undefined): id is string {
  return typeof id === 'string' && id !== '' && id.length <= MAX_ID_LENGTH && isStorableText(id);
}

/** Why a record cannot be taken in: nested deeper than `max` levels, or a NUL in a key or string (iterative: no recursion on client input). */
export function recordProblem(value: unknown, max: number = MAX_RECORD_DEPTH): 'depth' | 'nul' | null {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (typeof node === 'string') {
      if (!isStorableText(node)) return 'nul';
      continue;
    }
    if (node === null || typeof node !== 'object') continue;
    if (depth > max) return 'depth';
    if (Array.isArray(node)) {
      for (const child of node) stack.push([child, depth + 1]);
    } else {
      for (const [key, child] of Object.entries(node)) {
        if (!isStorableText(key)) return 'nul';
        stack.push([child, depth + 1]);
      }
    }
  }
  return null;
}

/** What `recordProblem` found, as the notification route and the sync's failures say it. */
export function recordProblemMessage(problem: 'depth' | 'nul'): string {
  return problem === 'depth' ? `nested deeper than ${MAX_RECORD_DEPTH} levels` : 'contains a NUL character or an unpaired surrogate';
}

/** The field of a record whose id is too long to key storage by (`group_id`, `id`, or a reference path of an inbound entity), or null. */
export function overlongId(groupId: string, record: ConnecRecord, entities: readonly AnyEntity[]): string | null {
  if (groupId.length > MAX_ID_LENGTH) return 'group_id';
  if ((connecIdOf(record.id)?.length ?? 0) > MAX_ID_LENGTH) return 'id';
  for (const entity of entities) {
    if (!entity.inbound) continue;
    for (const path of Object.keys(entity.references)) {
      for (const { value } of valuesAt(record, path)) {
        if ((connecIdOf(value)?.length ?? 0) > MAX_ID_LENGTH) return path;
      }
    }
  }
  return null;
}

/**
 * Why a record read from Connec! (an import or poll page, a fetch) cannot be stored, or null:
 * the notification route's rules (`recordProblem`, `overlongId`) for a record of `entity`.
 * `idUsable` says whether its Connec! id can still key a job that reads it again.
 */
export function unstorableRecord(record: ConnecRecord, entity: AnyEntity): { message: string; idUsable: boolean } | null {
  const problem = recordProblem(record);
  const groupId = typeof record.group_id === 'string' ? record.group_id : '';
  const long = problem === null ? overlongId(groupId, record, [entity]) : null;
  if (problem === null && long === null) return null;
  const connecId = connecIdOf(record.id);
  return {
    message: problem !== null ? recordProblemMessage(problem) : `${long} is longer than ${MAX_ID_LENGTH} characters`,
    idUsable: usableId(connecId),
  };
}
