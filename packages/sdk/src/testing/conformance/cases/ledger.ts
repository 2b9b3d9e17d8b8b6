import type { StorageCases } from '../types.js';

export const ledgerCases: StorageCases = {};
