import type { StorageCases } from '../types.js';

export const jobCases: StorageCases = {};
