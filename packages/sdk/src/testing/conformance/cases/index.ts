import type { StorageCases, StorageRepositoryName } from '../types.js';
import { cursorCases } from './cursors.js';
import { groupCases } from './groups.js';
import { idMapCases } from './id-maps.js';
import { jobCases } from './jobs.js';
import { ledgerCases } from './ledger.js';
import { lockCases } from './locks.js';
import { outageCases } from './outage.js';
import { replayCases } from './replay.js';
import {
  storableCursorCases,
  storableGroupCases,
  storableIdMapCases,
  storableJobCases,
  storableLedgerCases,
  storableLockCases,
  storableLookupCursorCases,
  storableLookupGroupCases,
  storableLookupIdMapCases,
  storableLookupJobCases,
  storableLookupLedgerCases,
  storableLookupLockCases,
  storableLookupUserCases,
  storableReplayCases,
  storableUserCases,
} from './storable-values.js';
import { userCases } from './users.js';

export const storageCases: Record<StorageRepositoryName, StorageCases> = {
  groups: { ...groupCases, ...storableGroupCases, ...storableLookupGroupCases },
  users: { ...userCases, ...storableUserCases, ...storableLookupUserCases },
  idMaps: { ...idMapCases, ...storableIdMapCases, ...storableLookupIdMapCases },
  cursors: { ...cursorCases, ...storableCursorCases, ...storableLookupCursorCases },
  jobs: { ...jobCases, ...storableJobCases, ...storableLookupJobCases },
  ledger: { ...ledgerCases, ...storableLedgerCases, ...storableLookupLedgerCases },
  replay: { ...replayCases, ...storableReplayCases },
  locks: { ...lockCases, ...storableLockCases, ...storableLookupLockCases },
  outage: outageCases,
};
