import Database from 'better-sqlite3';
import type {
  Bill,
  ConnecRecord,
  ExternalId,
  Group,
  Marketplace,
  Membership,
  OtherApp,
  RecurringBill,
  SsoSession,
  User,
} from './types.js';
import { MonotonicClock } from './util.js';

type Kind = 'app' | 'meta' | 'marketplace' | 'group' | 'user' | 'membership' | 'bill' | 'rbill' | 'record' | 'idmap' | 'session';

export interface EnvironmentCredentials {
  apiKey: string;
  apiSecret: string;
}

/** A second sandbox was started on a data file that a running sandbox holds. */
export class DataFileLockedError extends Error {
  readonly code = 'DATA_FILE_LOCKED';
  readonly dataFile: string;
  constructor(dataFile: string, options?: { cause?: unknown }) {
    super(`The data file ${dataFile} is in use by another running sandbox; stop it or use another data file`, options);
    this.name = 'DataFileLockedError';
    this.dataFile = dataFile;
  }
}

/**
 * Opens the data file and keeps it locked until close: SQLite's EXCLUSIVE locking mode holds
 * the file lock taken by the first transaction, so a second sandbox on the same file (in this
 * process or another) gets SQLITE_BUSY at once instead of overwriting the first one's state.
 * The lock is an OS file lock: it goes with the process, so a killed sandbox leaves none behind.
 */
function openExclusive(dataFile: string): Database.Database {
  // No busy wait: a held lock is another sandbox, not a transaction about to end.
  const db = new Database(dataFile, { timeout: 0 });
  try {
    // Before the first access, so WAL runs without the shared-memory index other connections use.
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('BEGIN EXCLUSIVE; COMMIT');
    db.exec('CREATE TABLE IF NOT EXISTS entities (kind TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (kind, id))');
    return db;
  } catch (e) {
    db.close();
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))) throw new DataFileLockedError(dataFile, { cause: e });
    throw e;
  }
}

/**
 * The sandbox state. Everything lives in memory; with a data file every mutation is
 * written through to SQLite (one row per entity, JSON encoded) and loaded back at start.
 */
export class Store {
  readonly marketplaces = new Map<string, Marketplace>();
  readonly groups = new Map<string, Group>();
  readonly users = new Map<string, User>();
  readonly memberships = new Map<string, Membership>();
  readonly bills = new Map<string, Bill>();
  readonly recurringBills = new Map<string, RecurringBill>();
  readonly records = new Map<string, ConnecRecord>();
  /** Records of one group and collection, in creation order. */
  readonly byCollection = new Map<string, ConnecRecord[]>();
  /** Index of each record in its `byCollection` list. */
  readonly #positions = new Map<string, number>();
  /** Connec! UUID -> the external ids attached to it. */
  readonly idMaps = new Map<string, ExternalId[]>();
  /** scope + provider + realm + external id -> Connec! UUID. */
  readonly externalIndex = new Map<string, string>();
  readonly sessions = new Map<string, SsoSession>();
  readonly otherApps = new Map<string, OtherApp>();
  readonly clock = new MonotonicClock();
  environment: EnvironmentCredentials | null = null;
  readonly #db: Database.Database | null;
  readonly #upsert: Database.Statement | null;
  readonly #remove: Database.Statement | null;

  /** Throws DataFileLockedError when another sandbox (this process or another one) has `dataFile` open. */
  constructor(dataFile?: string) {
    if (dataFile) {
      this.#db = openExclusive(dataFile);
      this.#upsert = this.#db.prepare('INSERT INTO entities (kind, id, json) VALUES (?, ?, ?) ON CONFLICT (kind, id) DO UPDATE SET json = excluded.json');
      this.#remove = this.#db.prepare('DELETE FROM entities WHERE kind = ? AND id = ?');
      try {
        this.#load();
      } catch (e) {
        this.#db.close(); // releases the lock: a file that cannot be read must not block the next start
        throw e;
      }
    } else {
      this.#db = null;
      this.#upsert = null;
      this.#remove = null;
    }
  }

  get persistent(): boolean {
    return this.#db !== null;
  }

  #load(): void {
    if (!this.#db) return;
    const rows = this.#db.prepare('SELECT kind, id, json FROM entities ORDER BY rowid').all() as Array<{ kind: Kind; id: string; json: string }>;
    for (const row of rows) {
      const value: unknown = JSON.parse(row.json);
      switch (row.kind) {
        case 'meta':
          if (row.id === 'environment') this.environment = value as EnvironmentCredentials;
          break;
        case 'marketplace':
          this.marketplaces.set(row.id, value as Marketplace);
          break;
        case 'group':
          this.groups.set(row.id, value as Group);
          break;
        case 'user':
          this.users.set(row.id, value as User);
          break;
        case 'membership':
          this.memberships.set(row.id, value as Membership);
          break;
        case 'bill':
          this.bills.set(row.id, value as Bill);
          break;
        case 'rbill':
          this.recurringBills.set(row.id, value as RecurringBill);
          break;
        case 'record':
          this.#indexRecord(value as ConnecRecord);
          break;
        case 'idmap':
          this.#indexIdMap(row.id, value as { scope: string; ids: ExternalId[] });
          break;
        case 'session':
          this.sessions.set(row.id, value as SsoSession);
          break;
        case 'app':
          this.otherApps.set(row.id, value as OtherApp);
          break;
      }
    }
    for (const record of this.records.values()) this.clock.observe(record.updatedAt);
  }

  #write(kind: Kind, id: string, value: unknown): void {
    this.#upsert?.run(kind, id, JSON.stringify(value));
  }

  /** Runs `fn` in one SQLite transaction when persistent (fast bulk writes). */
  transaction<T>(fn: () => T): T {
    if (!this.#db) return fn();
    return this.#db.transaction(fn)();
  }

  setEnvironment(env: EnvironmentCredentials): void {
    this.environment = env;
    this.#write('meta', 'environment', env);
  }

  putMarketplace(m: Marketplace): void {
    this.marketplaces.set(m.name, m);
    this.#write('marketplace', m.name, m);
  }
  putGroup(g: Group): void {
    this.groups.set(g.id, g);
    this.#write('group', g.id, g);
  }
  putUser(u: User): void {
    this.users.set(u.id, u);
    this.#write('user', u.id, u);
  }
  putMembership(m: Membership): void {
    const key = `${m.groupId}:${m.userId}`;
    this.memberships.set(key, m);
    this.#write('membership', key, m);
  }
  removeMembership(groupId: string, userId: string): boolean {
    const key = `${groupId}:${userId}`;
    const existed = this.memberships.delete(key);
    this.#remove?.run('membership', key);
    return existed;
  }
  putBill(b: Bill): void {
    this.bills.set(b.id, b);
    this.#write('bill', b.id, b);
  }
  putRecurringBill(b: RecurringBill): void {
    this.recurringBills.set(b.id, b);
    this.#write('rbill', b.id, b);
  }
  putOtherApp(a: OtherApp): void {
    this.otherApps.set(a.apiId, a);
    this.#write('app', a.apiId, a);
  }
  putSession(s: SsoSession): void {
    this.sessions.set(s.token, s);
    this.#write('session', s.token, s);
  }

  #indexRecord(r: ConnecRecord): void {
    const key = `${r.groupId}\u0000${r.collection}`;
    let list = this.byCollection.get(key);
    if (!list) {
      list = [];
      this.byCollection.set(key, list);
    }
    const at = this.#positions.get(r.id);
    // An update replaces the record in place (records are never removed): O(1), not a scan
    // of the collection, which made every link-back cost O(collection size).
    if (at !== undefined && list[at]?.id === r.id) list[at] = r;
    else {
      this.#positions.set(r.id, list.length);
      list.push(r);
    }
    this.records.set(r.id, r);
  }

  putRecord(r: ConnecRecord): void {
    this.#indexRecord(r);
    this.#write('record', r.id, r);
  }

  listRecords(groupId: string, collection: string): ConnecRecord[] {
    return this.byCollection.get(`${groupId}\u0000${collection}`) ?? [];
  }

  static externalKey(groupId: string, scope: string, ext: ExternalId): string {
    return `${groupId}\u0000${scope}\u0000${ext.provider}\u0000${ext.realm}\u0000${ext.id}`;
  }

  #indexIdMap(uuid: string, entry: { scope: string; group: string; ids: ExternalId[] } | { scope: string; ids: ExternalId[] }): void {
    this.idMaps.set(uuid, entry.ids);
    const group = 'group' in entry ? entry.group : '';
    for (const ext of entry.ids) this.externalIndex.set(Store.externalKey(group, entry.scope, ext), uuid);
  }

  /** Attaches an external id to a Connec! UUID (idempotent; one id per provider+realm). */
  attachExternalId(groupId: string, scope: string, uuid: string, ext: ExternalId): void {
    const list = this.idMaps.get(uuid) ?? [];
    const existing = list.findIndex((e) => e.provider === ext.provider && e.realm === ext.realm);
    if (existing >= 0) {
      const old = list[existing];
      if (old && old.id === ext.id) return;
      if (old) this.externalIndex.delete(Store.externalKey(groupId, scope, old));
      list[existing] = ext;
    } else {
      list.push(ext);
    }
    this.idMaps.set(uuid, list);
    // The id moves from another record (a placeholder reserved for it, say): that record's
    // list loses it too, in memory and in the data file, or a restart (which replays the
    // lists in write order) could give the id back to the older owner.
    const key = Store.externalKey(groupId, scope, ext);
    const previous = this.externalIndex.get(key);
    if (previous !== undefined && previous !== uuid) {
      const kept = (this.idMaps.get(previous) ?? []).filter((e) => !(e.provider === ext.provider && e.realm === ext.realm && e.id === ext.id));
      this.idMaps.set(previous, kept);
      this.#write('idmap', previous, { scope, group: groupId, ids: kept });
    }
    this.externalIndex.set(key, uuid);
    this.#write('idmap', uuid, { scope, group: groupId, ids: list });
  }

  findByExternalId(groupId: string, scope: string, ext: ExternalId): string | undefined {
    return this.externalIndex.get(Store.externalKey(groupId, scope, ext));
  }

  /** Forgets every group, user, bill, record and session; keeps marketplaces and credentials. */
  clearData(): void {
    this.groups.clear();
    this.users.clear();
    this.memberships.clear();
    this.bills.clear();
    this.recurringBills.clear();
    this.records.clear();
    this.byCollection.clear();
    this.idMaps.clear();
    this.externalIndex.clear();
    this.sessions.clear();
    this.otherApps.clear();
    this.#db?.exec("DELETE FROM entities WHERE kind NOT IN ('meta', 'marketplace')");
  }

  close(): void {
    this.#db?.close();
  }
}
