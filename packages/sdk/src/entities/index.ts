export { defineConnector, defineEntity, normalizeCollection } from './define.js';
export type { Entity } from './define.js';
export type {
  AnyEntity,
  BidirectionalEntityDefinition,
  ConflictPolicy,
  ConflictStrategy,
  ConnecRecord,
  ConnectorDefinition,
  ConnectorInput,
  EntityDefinition,
  GroupSyncSettings,
  IdentityOptions,
  InboundEntityDefinition,
  LocalContext,
  LocalCreateResult,
  LocalLister,
  LocalStore,
  LocalUpdateResult,
  MapperContext,
  MergeArgs,
  OutboundEntityDefinition,
  SyncDirection,
} from './types.js';
