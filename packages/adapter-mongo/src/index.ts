// Public API of @org/maestrano-adapter-mongo.
export { ensureIndexes, mongoAdapter } from './mongo-adapter.js';
export type { MongoAdapterOptions, MongoConnection, MongoStorageAdapter } from './mongo-adapter.js';
export { isDuplicateKeyError, toStorageError } from './errors.js';
export { collectionNames } from './store.js';
export type { CollectionNames, GuardMode } from './store.js';
