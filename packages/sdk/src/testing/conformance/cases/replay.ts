import type { StorageCases } from '../types.js';

export const replayCases: StorageCases = {};
