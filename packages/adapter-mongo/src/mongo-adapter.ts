import { type Db, MongoClient, type MongoClientOptions } from 'mongodb';
import { ConfigError, type StorageAdapter, type StorageOptions } from '@org/maestrano-sdk';
import { toStorageError } from './errors.js';
import { cursorRepository } from './repositories/cursors.js';
import { groupRepository } from './repositories/groups.js';
import { idMapRepository } from './repositories/id-maps.js';
import { jobRepository } from './repositories/jobs.js';
import { ledgerRepository } from './repositories/ledger.js';
import { lockRepository } from './repositories/locks.js';
import { replayRepository } from './repositories/replay.js';
import { userRepository } from './repositories/users.js';
import { type CollectionNames, collectionNames, type GuardMode, Store } from './store.js';

/** Let the adapter open (and close) its own client. */
export interface MongoConnection {
  url: string;
  /** Default: the database named in `url`, else `maestrano`. */
  dbName?: string;
  /**
   * Driver options. The adapter's defaults bound every operation when the server is down:
   * `serverSelectionTimeoutMS: 5000`, `connectTimeoutMS: 5000`, `socketTimeoutMS: 30000`.
   */
  clientOptions?: MongoClientOptions;
}

export interface MongoAdapterOptions extends StorageOptions {
  /** Prefix of every collection name. Default: `mno_`. */
  collectionPrefix?: string;
  /**
   * Write guards (see README): `auto` (default) turns them on for FerretDB, whose
   * conditional updates are not atomic, and off for MongoDB; `always`/`never` force it.
   */
  guard?: GuardMode;
  /** Age after which a write guard left by a crashed writer is removed. Default: 30 000 ms. */
  guardTimeoutMs?: number;
}

export interface MongoStorageAdapter extends StorageAdapter {
  /** The database the adapter writes to. */
  readonly db: Db;
  /** The collection names in use (after the prefix). */
  readonly collections: Readonly<CollectionNames>;
  /** Creates every collection and index the adapter relies on. Idempotent; run at deploy or start-up. */
  ensureIndexes(): Promise<void>;
}

const DEFAULT_CLIENT_OPTIONS: MongoClientOptions = {
  serverSelectionTimeoutMS: 5_000,
  connectTimeoutMS: 5_000,
  socketTimeoutMS: 30_000,
};

const GUARD_MODES: readonly string[] = ['auto', 'always', 'never'] satisfies GuardMode[];
const OPTION_KEYS: readonly string[] = ['clock', 'collectionPrefix', 'guard', 'guardTimeoutMs'] satisfies (keyof MongoAdapterOptions)[];

/**
 * A misspelt `guard` (`'Auto'`) or a `guardTimeoutMs` of 0 would silently change how writes
 * are guarded on FerretDB: refused, each problem named.
 */
function checkOptions(options: MongoAdapterOptions): void {
  const issues: { path: string; message: string }[] = [];
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('mongoAdapter: invalid options: must be an object', { issues: [{ path: '(root)', message: 'must be an object' }] });
  }
  // A misspelt key (`gaurd`, `collectionPrefx`) would silently fall back to its default.
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.includes(key)) issues.push({ path: key, message: `unknown option (expected one of ${OPTION_KEYS.join(', ')})` });
  }
  if (options.clock !== undefined && typeof options.clock !== 'function') {
    issues.push({ path: 'clock', message: 'must be a function returning a Date' });
  }
  if (options.guard !== undefined && !GUARD_MODES.includes(options.guard)) {
    issues.push({ path: 'guard', message: `must be one of ${GUARD_MODES.map((m) => `'${m}'`).join(', ')}` });
  }
  const timeout = options.guardTimeoutMs;
  if (timeout !== undefined && !(typeof timeout === 'number' && Number.isFinite(timeout) && timeout > 0)) {
    issues.push({ path: 'guardTimeoutMs', message: 'must be a number of milliseconds greater than 0' });
  }
  const prefixIssue = options.collectionPrefix === undefined ? null : checkPrefix(options.collectionPrefix);
  if (prefixIssue) issues.push({ path: 'collectionPrefix', message: prefixIssue });
  if (issues.length > 0) {
    throw new ConfigError(`mongoAdapter: invalid options: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`, { issues });
  }
}

/** What is wrong with a collection prefix, or null. */
function checkPrefix(prefix: unknown): string | null {
  // Unprefixed names (`jobs`, `users`, `groups`, `locks`) are the ones an app's own collections
  // have: the adapter would index, claim, dead-letter and purge the app's documents.
  if (prefix === '') return "must not be empty: the collections would be named jobs, users, … like an app's own (default mno_)";
  if (typeof prefix !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(prefix) || prefix.startsWith('system.')) {
    return 'must be letters, digits, _ . - (and not start with system.)';
  }
  return null;
}

function isDb(source: Db | MongoConnection): source is Db {
  return !('url' in source && typeof source.url === 'string');
}

/** The keys of a `{ url }` source (`MongoConnection`). */
const CONNECTION_KEYS: readonly string[] = ['url', 'dbName', 'clientOptions'];

/**
 * The first argument must be a `Db` (`client.db('app')`) or `{ url }`. A `MongoClient` (the
 * usual slip), a connection string or nothing would otherwise only fail at the first call,
 * as a `StorageError` wrapping a TypeError.
 */
function checkSource(source: unknown): void {
  let message: string | null = null;
  if (typeof source === 'string') message = "got a string: pass { url } (mongoAdapter({ url: '…' })) or a Db";
  else if (typeof source !== 'object' || source === null) message = "must be a Db (client.db('app')) or { url }";
  else if ('url' in source) {
    if (typeof source.url !== 'string') message = 'has a url that is not a string (a mongodb:// connection string)';
    else {
      // A misspelt `dbname` would silently select the URL's database (or `maestrano`).
      const unknown = Object.keys(source).filter((key) => !CONNECTION_KEYS.includes(key));
      const dbName = (source as { dbName?: unknown }).dbName;
      if (unknown.length > 0) message = `has unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} (expected ${CONNECTION_KEYS.join(', ')})`;
      else if (dbName !== undefined && (typeof dbName !== 'string' || dbName === '')) message = 'has a dbName that is not a non-empty string';
    }
  } else if (typeof (source as { collection?: unknown }).collection !== 'function') {
    message =
      typeof (source as { db?: unknown }).db === 'function'
        ? "got a MongoClient: pass one of its databases, mongoAdapter(client.db('app'))"
        : "must be a Db (client.db('app')) or { url }";
  }
  if (message !== null) throw new ConfigError(`mongoAdapter: the first argument ${message}`, { issues: [{ path: 'source', message }] });
}

/**
 * The MongoDB storage adapter (also runs on FerretDB). Pass your own `Db` (your client's
 * options then bound outages: set `serverSelectionTimeoutMS`), or a `{ url }` so the adapter
 * opens a client with bounded timeouts and closes it in `close()`.
 */
export function mongoAdapter(source: Db | MongoConnection, options: MongoAdapterOptions = {}): MongoStorageAdapter {
  checkSource(source);
  checkOptions(options);
  let ownClient: MongoClient | null = null;
  let db: Db;
  if (isDb(source)) {
    db = source;
  } else {
    try {
      ownClient = new MongoClient(source.url, { ...DEFAULT_CLIENT_OPTIONS, ...source.clientOptions });
    } catch (err) {
      // The driver's message may quote the connection string: keep it in `cause` only.
      throw new ConfigError('mongoAdapter: invalid MongoDB connection string or client options', {
        issues: [{ path: 'url', message: 'not a valid mongodb:// or mongodb+srv:// connection string' }],
        cause: err,
      });
    }
    db = ownClient.db(source.dbName ?? (dbNameFromUrl(source.url) || 'maestrano'));
  }
  const prefix = options.collectionPrefix ?? 'mno_';
  const owned = ownClient !== null;
  const store = new Store(db, {
    prefix,
    clock: options.clock ?? (() => new Date()),
    guard: options.guard ?? 'auto',
    guardTimeoutMs: options.guardTimeoutMs ?? 30_000,
    // The adapter's own client is reconnected until `close()`; a user's client until its owner closes it.
    mayReconnect: () => !owned || ownClient !== null,
  });
  return {
    id: 'mongo',
    capabilities: { transactions: false },
    db,
    collections: store.names,
    groups: groupRepository(store),
    users: userRepository(store),
    idMaps: idMapRepository(store),
    cursors: cursorRepository(store),
    jobs: jobRepository(store),
    ledger: ledgerRepository(store),
    replay: replayRepository(store),
    locks: lockRepository(store),
    ensureIndexes: async () => {
      try {
        await store.reconnecting(() => ensureIndexes(db, prefix));
      } catch (err) {
        throw toStorageError('adapter.ensureIndexes', err);
      }
      store.resetIndexCheck();
    },
    async close() {
      if (!ownClient) return;
      const client = ownClient;
      ownClient = null;
      try {
        await client.close();
      } catch (err) {
        throw toStorageError('adapter.close', err);
      }
    },
  };
}

function dbNameFromUrl(url: string): string {
  const match = /^mongodb(?:\+srv)?:\/\/[^/]+\/([^?]*)/.exec(url);
  return match?.[1] ? decodeURIComponent(match[1]) : '';
}

/**
 * Every index the adapter needs. Only plain and unique indexes are used (no partial or TTL
 * options, which FerretDB 1.24 lacks): natural keys live in `_id`, nullable unique fields
 * get never-null slot fields.
 */
export async function ensureIndexes(db: Db, prefix = 'mno_'): Promise<void> {
  const prefixIssue = checkPrefix(prefix);
  if (prefixIssue) {
    throw new ConfigError(`ensureIndexes: invalid prefix: ${prefixIssue}`, { issues: [{ path: 'prefix', message: prefixIssue }] });
  }
  const names = collectionNames(prefix);
  const existing = new Set((await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name));
  for (const name of Object.values(names)) {
    if (!existing.has(name)) {
      try {
        await db.createCollection(name);
      } catch (err) {
        // Created concurrently by another process: fine.
        if ((err as { code?: unknown }).code !== 48) throw err;
      }
    }
  }
  await db.collection(names.groups).createIndex({ tenant: 1, provisioned: 1, groupId: 1 }, { name: 'tenant_groups' });
  await db.collection(names.users).createIndex({ tenant: 1, userId: 1 }, { name: 'tenant_user_id' });
  await db.collection(names.memberships).createIndex({ tenant: 1, groupId: 1 }, { name: 'tenant_group' });
  await db.collection(names.memberships).createIndex({ tenant: 1, uid: 1 }, { name: 'tenant_uid' });
  // A group's latest membership change (`users.seats`) without sorting the group.
  await db.collection(names.memberships).createIndex({ tenant: 1, groupId: 1, updatedAt: -1 }, { name: 'tenant_group_updated' });
  const maps = db.collection(names.idMaps);
  await maps.createIndex({ tenant: 1, groupId: 1, entity: 1, connecKey: 1 }, { name: 'scope_connec_unique', unique: true });
  await maps.createIndex({ tenant: 1, groupId: 1, entity: 1, localKey: 1 }, { name: 'scope_local_unique', unique: true });
  await maps.createIndex({ tenant: 1, groupId: 1, entity: 1, createdAt: 1, _id: 1 }, { name: 'scope_created' });
  await db.collection(names.cursors).createIndex({ tenant: 1, groupId: 1 }, { name: 'tenant_group' });
  const jobs = db.collection(names.jobs);
  await jobs.createIndex({ dedupeSlot: 1 }, { name: 'dedupe_unique', unique: true });
  await jobs.createIndex({ status: 1, runAt: 1, createdAt: 1, _id: 1 }, { name: 'due' });
  await jobs.createIndex({ status: 1, leaseExpiresAt: 1 }, { name: 'leases' });
  await jobs.createIndex({ orderingKey: 1, status: 1, createdAt: 1 }, { name: 'ordering' });
  await jobs.createIndex({ waitKey: 1, status: 1 }, { name: 'waiting' });
  await jobs.createIndex({ status: 1, completedAt: 1 }, { name: 'completed' });
  await db.collection(names.replay).createIndex({ expiresAt: 1 }, { name: 'expiry' });
}
