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
  storableReplayCases,
  storableUserCases,
} from './storable-values.js';
import { userCases } from './users.js';

export const storageCases: Record<StorageRepositoryName, StorageCases> = {
  groups: { ...groupCases, ...storableGroupCases },
  users: { ...userCases, ...storableUserCases },
  idMaps: { ...idMapCases, ...storableIdMapCases },
  cursors: { ...cursorCases, ...storableCursorCases },
  jobs: { ...jobCases, ...storableJobCases },
  ledger: { ...ledgerCases, ...storableLedgerCases },
  replay: { ...replayCases, ...storableReplayCases },
  locks: { ...lockCases, ...storableLockCases },
  outage: outageCases,
};
