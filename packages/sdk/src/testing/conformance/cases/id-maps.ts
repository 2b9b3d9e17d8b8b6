import type { StorageCases } from '../types.js';

export const idMapCases: StorageCases = {};
