export { backoffDelay, companyCreatedFanout, createWorker } from './worker.js';
export type { BackoffPolicy, Worker, WorkerEvent, WorkerRunOptions, WorkerStats } from './worker.js';
export type { DeadLetter, DeadLetterFilter } from './dead-letters.js';
