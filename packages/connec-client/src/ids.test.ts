import { describe, expect, it } from 'vitest';
import { PayloadValidationError } from './errors.js';
import {
  attachId,
  connecId,
  detachId,
  externalId,
  findIdMap,
  foldReferences,
  isIdMapArray,
  mapAtPath,
  mergeIdMaps,
  unfoldReferences,
  valuesAtPath,
} from './ids.js';
import { referenceFields } from './schemas/catalog.js';

const C = (id: string) => ({ id, provider: 'connec', realm: 'org-f6zi' });
const A = (id: string) => ({ id, provider: 'myapp', realm: 'acct-42' });
const OTHER = (id: string) => ({ id, provider: 'myapp', realm: 'acct-99' });
const me = { provider: 'myapp', realm: 'acct-42' };

describe('id arrays', () => {
  it('finds the Connec! id and our own id, for arrays and plain strings', () => {
    const ids = [C('p9'), OTHER('x'), A('per-55')];
    expect(connecId(ids)).toBe('p9');
    expect(connecId('plain-uuid')).toBe('plain-uuid');
    expect(connecId([A('per-55')])).toBeUndefined();
    expect(connecId(null)).toBeUndefined();
    expect(externalId(ids, me)).toBe('per-55');
    expect(externalId(ids, { provider: 'myapp', realm: 'acct-99' })).toBe('x');
    expect(externalId('plain-uuid', me)).toBeUndefined();
    expect(findIdMap(ids, me)).toEqual(A('per-55'));
    expect(isIdMapArray(ids)).toBe(true);
    expect(isIdMapArray([{ id: 1 }])).toBe(false);
  });

  it('attaches, replaces and detaches our id without mutating the input', () => {
    const ids = [C('p9'), A('old')];
    const attached = attachId(ids, 'per-55', me);
    expect(attached).toEqual([C('p9'), A('per-55')]);
    expect(ids).toEqual([C('p9'), A('old')]);
    expect(attachId(undefined, 'per-55', me)).toEqual([A('per-55')]);
    expect(detachId(attached, me)).toEqual([C('p9')]);
    expect(attachId('p9', 'per-55', me, { connecRealm: 'org-f6zi' })).toEqual([C('p9'), A('per-55')]);
    expect(() => attachId('p9', 'per-55', me)).toThrow(PayloadValidationError);
  });

  it('merges arrays by provider and realm, later entries winning, order of first appearance kept', () => {
    expect(mergeIdMaps([[C('l1')], [A('ln-a'), OTHER('z')], [A('ln-b')]])).toEqual([C('l1'), A('ln-b'), OTHER('z')]);
    expect(mergeIdMaps([null, undefined, [C('x')]])).toEqual([C('x')]);
  });
});

describe('paths', () => {
  const invoice = {
    id: [C('i1')],
    person_id: [C('p9'), A('per-55')],
    lines: [
      { id: [C('l1')], item_id: [C('it1'), A('sku-1')], quantity: 2 },
      { id: [C('l2')], description: 'Shipping', quantity: 1 },
      { id: [C('l3')], item_id: [C('it2')] },
    ],
  };

  it('reads every value at a nested path with its concrete location', () => {
    expect(valuesAtPath(invoice, 'lines/item_id')).toEqual([
      { path: 'lines/0/item_id', value: [C('it1'), A('sku-1')] },
      { path: 'lines/2/item_id', value: [C('it2')] },
    ]);
    expect(valuesAtPath({ payment_lines: [{ linked_transactions: [{ id: 'a' }, { id: 'b' }] }] }, 'payment_lines/linked_transactions/id')).toEqual([
      { path: 'payment_lines/0/linked_transactions/0/id', value: 'a' },
      { path: 'payment_lines/0/linked_transactions/1/id', value: 'b' },
    ]);
    expect(() => valuesAtPath(invoice, '')).toThrow(PayloadValidationError);
  });

  it('maps values at a path, copying only what it touches', () => {
    const out = mapAtPath(invoice, 'lines/quantity', (v) => (typeof v === 'number' ? v * 10 : v));
    expect(out.lines.map((l) => ('quantity' in l ? l.quantity : undefined))).toEqual([20, 10, undefined]);
    expect(invoice.lines[0]?.quantity).toBe(2);
    expect(out.person_id).toBe(invoice.person_id);
    expect('quantity' in (out.lines[2] ?? {})).toBe(false);
  });

  it('unfolds references into our ids and lists the ones we have no id for', () => {
    const paths = ['id', ...referenceFields.invoices.map((r) => r.path)];
    const { record, unresolved } = unfoldReferences(invoice, paths, me);
    expect(record.person_id).toBe('per-55');
    expect(record.id).toBeNull();
    expect(record.lines.map((l) => ('item_id' in l ? l.item_id : 'absent'))).toEqual(['sku-1', 'absent', null]);
    expect(unresolved).toEqual([
      { path: 'id', connecId: 'i1' },
      { path: 'lines/2/item_id', connecId: 'it2' },
    ]);
    expect(invoice.person_id).toEqual([C('p9'), A('per-55')]);
  });

  it('unfolds plain-string references (external ids off) as unresolved Connec! ids', () => {
    const { record, unresolved } = unfoldReferences({ organization_id: 'o1', assignee_id: null }, ['organization_id', 'assignee_id'], me);
    expect(record).toEqual({ organization_id: null, assignee_id: null });
    expect(unresolved).toEqual([{ path: 'organization_id', connecId: 'o1' }]);
  });

  it('folds our plain ids into id arrays, leaving arrays and nulls alone', () => {
    const local = { person_id: 'per-55', organization_id: null, lines: [{ item_id: 'sku-1' }, { item_id: [C('it2')] }, {}] };
    const folded = foldReferences(local, ['person_id', 'organization_id', 'lines/item_id'], me);
    expect(folded).toEqual({
      person_id: [A('per-55')],
      organization_id: null,
      lines: [{ item_id: [A('sku-1')] }, { item_id: [C('it2')] }, {}],
    });
    expect(local.person_id).toBe('per-55');
  });
});
