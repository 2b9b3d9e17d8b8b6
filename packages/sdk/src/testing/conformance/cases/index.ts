import type { StorageCases, StorageRepositoryName } from '../types.js';
import { cursorCases } from './cursors.js';
import { groupCases } from './groups.js';
import { idMapCases } from './id-maps.js';
import { jobCases } from './jobs.js';
import { ledgerCases } from './ledger.js';
import { lockCases } from './locks.js';
import { outageCases } from './outage.js';
import { replayCases } from './replay.js';
import { userCases } from './users.js';

export const storageCases: Record<StorageRepositoryName, StorageCases> = {
  groups: groupCases,
  users: userCases,
  idMaps: idMapCases,
  cursors: cursorCases,
  jobs: jobCases,
  ledger: ledgerCases,
  replay: replayCases,
  locks: lockCases,
  outage: outageCases,
};
