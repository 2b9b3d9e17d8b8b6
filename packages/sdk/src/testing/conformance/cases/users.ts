import type { StorageCases } from '../types.js';

export const userCases: StorageCases = {};
