import type { StorageCases } from '../types.js';

export const lockCases: StorageCases = {};
