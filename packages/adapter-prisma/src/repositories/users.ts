import {
  type ClaimOptions,
  type GroupSeats,
  type MembershipRecord,
  type MembershipStatus,
  type ProvisionClaim,
  UNRECORDED_ROLE,
  type UserRecord,
  type UserRepository,
  type UserStatus,
} from '@org/maestrano-sdk';
import { date, join, num, optDate, type Row, raw, type Sql, sql, str, ts } from '../sql.js';
import { claimOptions, conflict, invalid, nonEmpty, raceBackoff, RACE_RETRIES, type RepositoryContext, raceLost, storableLookup, storableText } from './context.js';
import { claimProvision } from './provisioning.js';

const USER_COLUMNS = raw('tenant, uid, user_id, status, claim_owner, claim_expires_at, created_at, updated_at');
const MEMBERSHIP_COLUMNS = raw('tenant, uid, group_id, role, status, created_at, updated_at');

function toUser(row: Row): UserRecord {
  return {
    tenant: str(row, 'tenant'),
    uid: str(row, 'uid'),
    userId: str(row, 'user_id'),
    status: str(row, 'status') === 'blocked' ? 'blocked' : 'active',
    createdAt: date(row, 'created_at'),
    updatedAt: date(row, 'updated_at'),
  };
}

function toMembership(row: Row): MembershipRecord {
  return {
    tenant: str(row, 'tenant'),
    uid: str(row, 'uid'),
    groupId: str(row, 'group_id'),
    role: str(row, 'role'),
    status: str(row, 'status') === 'removed' ? 'removed' : 'active',
    createdAt: date(row, 'created_at'),
    updatedAt: date(row, 'updated_at'),
  };
}

export function userRepository(ctx: RepositoryContext): UserRepository {
  const { db } = ctx;
  const key = (tenant: string, uid: string): Sql => sql`tenant = ${tenant} AND uid = ${uid}`;
  const membershipKey = (tenant: string, uid: string, groupId: string): Sql =>
    sql`tenant = ${tenant} AND uid = ${uid} AND group_id = ${groupId}`;
  const byUid = db.provider === 'postgresql' ? raw('uid COLLATE "C"') : raw('uid');
  const byGroup = db.provider === 'postgresql' ? raw('group_id COLLATE "C"') : raw('group_id');

  async function get(tenant: string, uid: string): Promise<UserRecord | null> {
    storableLookup('users.get', { tenant, uid });
    const [row] = await db.query(
      'users.get',
      sql`SELECT ${USER_COLUMNS} FROM maestrano_users WHERE ${key(tenant, uid)} AND user_id IS NOT NULL`,
    );
    return row ? toUser(row) : null;
  }

  async function getMembership(tenant: string, uid: string, groupId: string): Promise<MembershipRecord | null> {
    const [row] = await db.query(
      'users.getMembership',
      sql`SELECT ${MEMBERSHIP_COLUMNS} FROM maestrano_memberships WHERE ${membershipKey(tenant, uid, groupId)}`,
    );
    return row ? toMembership(row) : null;
  }

  return {
    get,

    async findByUserId(tenant: string, userId: string): Promise<UserRecord[]> {
      storableLookup('users.findByUserId', { tenant, userId });
      const found = await db.query(
        'users.findByUserId',
        sql`SELECT ${USER_COLUMNS} FROM maestrano_users WHERE tenant = ${tenant} AND user_id = ${userId} ORDER BY ${byUid}`,
      );
      return found.map(toUser);
    },

    async claim(tenant: string, uid: string, options: ClaimOptions): Promise<ProvisionClaim<UserRecord>> {
      nonEmpty('users.claim', 'tenant', tenant);
      nonEmpty('users.claim', 'uid', uid);
      claimOptions('users.claim', options);
      return claimProvision(ctx, {
        operation: 'users.claim',
        table: 'maestrano_users',
        recordColumn: 'user_id',
        columns: USER_COLUMNS,
        key: key(tenant, uid),
        insertClaim: (now, expires) =>
          sql`INSERT INTO maestrano_users (tenant, uid, status, claim_owner, claim_expires_at, created_at, updated_at)
              VALUES (${tenant}, ${uid}, 'claimed', ${options.owner}, ${ts(expires)}, ${ts(now)}, ${ts(now)})
              ON CONFLICT (tenant, uid) DO NOTHING RETURNING tenant`,
        decode: toUser,
      }, options);
    },

    async complete(tenant: string, uid: string, owner: string, data: { userId: string }): Promise<UserRecord> {
      storableLookup('users.complete', { tenant, uid, owner });
      nonEmpty('users.complete', 'userId', data.userId);
      const now = ctx.now();
      const [row] = await db.query(
        'users.complete',
        sql`UPDATE maestrano_users SET user_id = ${data.userId}, status = 'active', claim_owner = NULL, claim_expires_at = NULL,
              updated_at = ${ts(now)}
            WHERE ${key(tenant, uid)} AND user_id IS NULL AND claim_owner = ${owner} RETURNING ${USER_COLUMNS}`,
      );
      if (!row) throw conflict('users.complete', `user ${uid} is not claimed by this owner (claim expired and taken over, or already provisioned)`);
      return toUser(row);
    },

    async release(tenant: string, uid: string, owner: string): Promise<void> {
      storableLookup('users.release', { tenant, uid, owner });
      await db.execute(
        'users.release',
        sql`DELETE FROM maestrano_users WHERE ${key(tenant, uid)} AND user_id IS NULL AND claim_owner = ${owner}`,
      );
    },

    async setStatus(tenant: string, uid: string, status: UserStatus): Promise<{ changed: boolean; user: UserRecord | null }> {
      if (status !== 'active' && status !== 'blocked') throw invalid('users.setStatus', `unknown user status "${String(status)}"`);
      storableLookup('users.setStatus', { tenant, uid });
      const now = ctx.now();
      const [row] = await db.query(
        'users.setStatus',
        sql`UPDATE maestrano_users SET status = ${status}, updated_at = ${ts(now)}
            WHERE ${key(tenant, uid)} AND user_id IS NOT NULL AND status <> ${status} RETURNING ${USER_COLUMNS}`,
      );
      if (row) return { changed: true, user: toUser(row) };
      return { changed: false, user: await get(tenant, uid) };
    },

    async upsertMembership(
      tenant: string,
      uid: string,
      groupId: string,
      role: string,
    ): Promise<{ membership: MembershipRecord; created: boolean; changed: boolean }> {
      storableText('users.upsertMembership', 'tenant', tenant);
      storableText('users.upsertMembership', 'uid', uid);
      storableText('users.upsertMembership', 'groupId', groupId);
      nonEmpty('users.upsertMembership', 'role', role);
      for (let attempt = 0; attempt < RACE_RETRIES; attempt++) {
        await raceBackoff(attempt);
        const now = ctx.now();
        const [created] = await db.query(
          'users.upsertMembership',
          sql`INSERT INTO maestrano_memberships (tenant, uid, group_id, role, status, created_at, updated_at)
              VALUES (${tenant}, ${uid}, ${groupId}, ${role}, 'active', ${ts(now)}, ${ts(now)})
              ON CONFLICT (tenant, uid, group_id) DO NOTHING RETURNING ${MEMBERSHIP_COLUMNS}`,
        );
        if (created) return { membership: toMembership(created), created: true, changed: true };
        const [changed] = await db.query(
          'users.upsertMembership',
          sql`UPDATE maestrano_memberships SET role = ${role}, status = 'active', updated_at = ${ts(now)}
              WHERE ${membershipKey(tenant, uid, groupId)} AND (role <> ${role} OR status <> 'active')
              RETURNING ${MEMBERSHIP_COLUMNS}`,
        );
        if (changed) return { membership: toMembership(changed), created: false, changed: true };
        const existing = await getMembership(tenant, uid, groupId);
        if (existing) return { membership: existing, created: false, changed: false };
      }
      throw raceLost('users.upsertMembership');
    },

    async setMembershipStatus(
      tenant: string,
      uid: string,
      groupId: string,
      status: MembershipStatus,
    ): Promise<{ changed: boolean; membership: MembershipRecord | null }> {
      if (status !== 'active' && status !== 'removed') {
        throw invalid('users.setMembershipStatus', `unknown membership status "${String(status)}"`);
      }
      storableLookup('users.setMembershipStatus', { tenant, uid, groupId });
      const now = ctx.now();
      const [row] = await db.query(
        'users.setMembershipStatus',
        sql`UPDATE maestrano_memberships SET status = ${status}, updated_at = ${ts(now)}
            WHERE ${membershipKey(tenant, uid, groupId)} AND status <> ${status} RETURNING ${MEMBERSHIP_COLUMNS}`,
      );
      if (row) return { changed: true, membership: toMembership(row) };
      return { changed: false, membership: await getMembership(tenant, uid, groupId) };
    },

    async listMemberships(
      tenant: string,
      filter: { uid?: string; groupId?: string; status?: MembershipStatus },
    ): Promise<MembershipRecord[]> {
      storableLookup('users.listMemberships', { tenant, uid: filter.uid, groupId: filter.groupId });
      const conditions: Sql[] = [sql`tenant = ${tenant}`];
      if (filter.uid !== undefined) conditions.push(sql`uid = ${filter.uid}`);
      if (filter.groupId !== undefined) conditions.push(sql`group_id = ${filter.groupId}`);
      if (filter.status !== undefined) conditions.push(sql`status = ${filter.status}`);
      const found = await db.query(
        'users.listMemberships',
        sql`SELECT ${MEMBERSHIP_COLUMNS} FROM maestrano_memberships WHERE ${join(conditions, ' AND ')} ORDER BY ${byGroup}, ${byUid}`,
      );
      return found.map(toMembership);
    },

    async seats(tenant: string, groupId: string, options?: { exceptUid?: string }): Promise<GroupSeats> {
      const exceptUid = options?.exceptUid;
      // From untyped JavaScript, \`null\` would count nobody (\`uid <> NULL\` is never true).
      if (exceptUid !== undefined && typeof exceptUid !== 'string') throw invalid('users.seats', 'exceptUid must be a string when given');
      storableLookup('users.seats', { tenant, groupId, exceptUid });
      const conditions: Sql[] = [sql`tenant = ${tenant}`, sql`group_id = ${groupId}`];
      if (exceptUid !== undefined) conditions.push(sql`uid <> ${exceptUid}`);
      // One aggregate over the (tenant, group_id) index: a group may hold tens of thousands of
      // members. MAX over SQLite's stored text compares as the instants do (fixed-width ISO).
      const [row] = await db.query(
        'users.seats',
        sql`SELECT COUNT(CASE WHEN status = 'active' AND role <> ${UNRECORDED_ROLE} THEN 1 END) AS active, MAX(updated_at) AS latest
            FROM maestrano_memberships WHERE ${join(conditions, ' AND ')}`,
      );
      return { active: row ? num(row, 'active') : 0, latestChange: row ? optDate(row, 'latest') : null };
    },
  };
}
