import type { StorageCases } from '../types.js';

export const cursorCases: StorageCases = {};
