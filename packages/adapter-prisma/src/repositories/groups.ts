import type {
  ClaimOptions,
  GroupCompletion,
  GroupPatch,
  GroupRecord,
  GroupRepository,
  GroupStatus,
  ProvisionClaim,
} from '@org/maestrano-sdk';
import { date, join, json, jsonObject, jsonText, optDate, optStr, type Row, raw, type Sql, sql, str, ts } from '../sql.js';
import { claimOptions, conflict, nonEmpty, positiveInt, type RepositoryContext, storableJson, storableLookup, storableText, validDate } from './context.js';
import { claimProvision } from './provisioning.js';


function groupStatus(value: string): GroupStatus {
  return value === 'cancelled' ? 'cancelled' : 'active';
}

function toGroup(row: Row): GroupRecord {
  return {
    tenant: str(row, 'tenant'),
    groupId: str(row, 'group_id'),
    companyId: str(row, 'company_id'),
    status: groupStatus(str(row, 'status')),
    orgUid: optStr(row, 'org_uid'),
    trialEndsAt: optDate(row, 'trial_ends_at'),
    settings: jsonObject(row, 'settings'),
    createdAt: date(row, 'created_at'),
    updatedAt: date(row, 'updated_at'),
    cancelledAt: optDate(row, 'cancelled_at'),
  };
}

export function groupRepository(ctx: RepositoryContext): GroupRepository {
  const { db } = ctx;
  const COLUMNS = raw(
    `tenant, group_id, company_id, status, org_uid, trial_ends_at, ${jsonText(db.provider, 'settings')}, claim_owner, claim_expires_at, created_at, updated_at, cancelled_at`,
  );
  const key = (tenant: string, groupId: string): Sql => sql`tenant = ${tenant} AND group_id = ${groupId}`;

  async function get(tenant: string, groupId: string): Promise<GroupRecord | null> {
    storableLookup('groups.get', { tenant, groupId });
    const [row] = await db.query(
      'groups.get',
      sql`SELECT ${COLUMNS} FROM maestrano_groups WHERE ${key(tenant, groupId)} AND company_id IS NOT NULL`,
    );
    return row ? toGroup(row) : null;
  }

  return {
    get,

    async claim(tenant: string, groupId: string, options: ClaimOptions): Promise<ProvisionClaim<GroupRecord>> {
      nonEmpty('groups.claim', 'tenant', tenant);
      nonEmpty('groups.claim', 'groupId', groupId);
      claimOptions('groups.claim', options);
      return claimProvision(ctx, {
        operation: 'groups.claim',
        table: 'maestrano_groups',
        recordColumn: 'company_id',
        columns: COLUMNS,
        key: key(tenant, groupId),
        insertClaim: (now, expires) =>
          sql`INSERT INTO maestrano_groups (tenant, group_id, status, settings, claim_owner, claim_expires_at, created_at, updated_at)
              VALUES (${tenant}, ${groupId}, 'claimed', ${json({}, false)}, ${options.owner}, ${ts(expires)}, ${ts(now)}, ${ts(now)})
              ON CONFLICT (tenant, group_id) DO NOTHING RETURNING tenant`,
        decode: toGroup,
      }, options);
    },

    async complete(tenant: string, groupId: string, owner: string, data: GroupCompletion): Promise<GroupRecord> {
      storableLookup('groups.complete', { tenant, groupId, owner });
      nonEmpty('groups.complete', 'companyId', data.companyId);
      storableText('groups.complete', 'orgUid', data.orgUid);
      if (data.trialEndsAt) validDate('groups.complete', 'trialEndsAt', data.trialEndsAt);
      storableJson('groups.complete', 'settings', data.settings);
      const now = ctx.now();
      const [row] = await db.query(
        'groups.complete',
        sql`UPDATE maestrano_groups SET company_id = ${data.companyId}, status = 'active', org_uid = ${data.orgUid ?? null},
              trial_ends_at = ${ts(data.trialEndsAt ?? null)}, settings = ${json(data.settings ?? {}, false)},
              claim_owner = NULL, claim_expires_at = NULL, created_at = ${ts(now)}, updated_at = ${ts(now)}, cancelled_at = NULL
            WHERE ${key(tenant, groupId)} AND company_id IS NULL AND claim_owner = ${owner}
            RETURNING ${COLUMNS}`,
      );
      if (!row) throw conflict('groups.complete', `group ${groupId} is not claimed by this owner (claim expired and taken over, or already provisioned)`);
      return toGroup(row);
    },

    async release(tenant: string, groupId: string, owner: string): Promise<void> {
      storableLookup('groups.release', { tenant, groupId, owner });
      await db.execute(
        'groups.release',
        sql`DELETE FROM maestrano_groups WHERE ${key(tenant, groupId)} AND company_id IS NULL AND claim_owner = ${owner}`,
      );
    },

    async update(tenant: string, groupId: string, patch: GroupPatch): Promise<GroupRecord | null> {
      storableLookup('groups.update', { tenant, groupId });
      storableText('groups.update', 'orgUid', patch.orgUid);
      if (patch.trialEndsAt) validDate('groups.update', 'trialEndsAt', patch.trialEndsAt);
      storableJson('groups.update', 'settings', patch.settings);
      const now = ctx.now();
      const sets: Sql[] = [sql`updated_at = ${ts(now)}`];
      if (patch.orgUid !== undefined) sets.push(sql`org_uid = ${patch.orgUid}`);
      if (patch.trialEndsAt !== undefined) sets.push(sql`trial_ends_at = ${ts(patch.trialEndsAt)}`);
      if (patch.settings !== undefined) sets.push(sql`settings = ${json(patch.settings, false)}`);
      const [row] = await db.query(
        'groups.update',
        sql`UPDATE maestrano_groups SET ${join(sets, ', ')} WHERE ${key(tenant, groupId)} AND company_id IS NOT NULL RETURNING ${COLUMNS}`,
      );
      return row ? toGroup(row) : null;
    },

    async cancel(tenant: string, groupId: string): Promise<{ changed: boolean; group: GroupRecord | null }> {
      storableLookup('groups.cancel', { tenant, groupId });
      const now = ctx.now();
      const [row] = await db.query(
        'groups.cancel',
        sql`UPDATE maestrano_groups SET status = 'cancelled', cancelled_at = ${ts(now)}, updated_at = ${ts(now)}
            WHERE ${key(tenant, groupId)} AND company_id IS NOT NULL AND status = 'active' RETURNING ${COLUMNS}`,
      );
      if (row) return { changed: true, group: toGroup(row) };
      return { changed: false, group: await get(tenant, groupId) };
    },

    async list(tenant: string, filter?: { status?: GroupStatus; limit?: number; after?: string }): Promise<GroupRecord[]> {
      storableLookup('groups.list', { tenant });
      if (filter?.limit !== undefined) positiveInt('groups.list', 'limit', filter.limit);
      storableText('groups.list', 'after', filter?.after);
      const status = filter?.status === undefined ? raw('') : sql` AND status = ${filter.status}`;
      const groupId = db.provider === 'postgresql' ? raw('group_id COLLATE "C"') : raw('group_id');
      const after = filter?.after === undefined ? raw('') : sql` AND ${groupId} > ${filter.after}`;
      const limit = filter?.limit === undefined ? raw('') : sql` LIMIT ${filter.limit}`;
      const found = await db.query(
        'groups.list',
        sql`SELECT ${COLUMNS} FROM maestrano_groups WHERE tenant = ${tenant} AND company_id IS NOT NULL${status}${after} ORDER BY ${groupId}${limit}`,
      );
      return found.map(toGroup);
    },
  };
}
