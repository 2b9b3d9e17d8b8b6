import type { StorageCases } from '../types.js';

export const groupCases: StorageCases = {};
