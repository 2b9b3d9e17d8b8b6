import { memoryAdapter } from '@org/maestrano-sdk';
import { describeStorageAdapter, memoryInspector } from '@org/maestrano-sdk/testing';
import { memoryState } from '../src/storage/memory.js';

describeStorageAdapter({
  name: 'memory',
  async setup({ clock }) {
    const adapter = memoryAdapter({ clock });
    return {
      adapter,
      inspect: memoryInspector(adapter),
    };
  },
  async reset({ adapter }) {
    memoryState(adapter).clear();
  },
});
