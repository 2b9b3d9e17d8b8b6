export { connecClientFor, connecPort } from './connec-port.js';
export { ImportBusyError, ImportFailedError, refWaitKey, SyncDisabledError, SyncEngine } from './engine.js';
export type { ApplyOutcome, PushItemResult, SyncOptions } from './engine.js';
export { createSyncModule, parseSyncConfig } from './module.js';
export type { DeadLetter, SyncApi, SyncModule, SyncModuleConfig } from './module.js';
export type { EntityReport, RecordFailure, SkipReason, SyncCounters, SyncEvent, SyncReport } from './observe.js';
export type { BatchOp, BatchOpResult, ConnecPage, ConnecPort, ListPageOptions } from './ports.js';
export { GroupPurgeRefusedError } from './purge.js';
export type { GroupPurgeResult } from './purge.js';
