-- CreateTable
CREATE TABLE "maestrano_groups" (
    "tenant" TEXT NOT NULL,
    "group_id" TEXT NOT NULL,
    "company_id" TEXT,
    "status" TEXT NOT NULL,
    "org_uid" TEXT,
    "trial_ends_at" TIMESTAMP(3),
    "settings" JSONB NOT NULL,
    "claim_owner" TEXT,
    "claim_expires_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL,
    "updated_at" TIMESTAMP(3) NOT NULL,
    "cancelled_at" TIMESTAMP(3),

    CONSTRAINT "maestrano_groups_pkey" PRIMARY KEY ("tenant","group_id")
);

-- CreateTable
CREATE TABLE "maestrano_users" (
    "tenant" TEXT NOT NULL,
    "uid" TEXT NOT NULL,
    "user_id" TEXT,
    "status" TEXT NOT NULL,
    "claim_owner" TEXT,
    "claim_expires_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "maestrano_users_pkey" PRIMARY KEY ("tenant","uid")
);

-- CreateTable
CREATE TABLE "maestrano_memberships" (
    "tenant" TEXT NOT NULL,
    "uid" TEXT NOT NULL,
    "group_id" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "maestrano_memberships_pkey" PRIMARY KEY ("tenant","uid","group_id")
);

-- CreateTable
CREATE TABLE "maestrano_id_maps" (
    "seq" BIGSERIAL NOT NULL,
    "tenant" TEXT NOT NULL,
    "group_id" TEXT NOT NULL,
    "entity" TEXT NOT NULL,
    "connec_id" TEXT,
    "local_id" TEXT,
    "last_applied_at" TIMESTAMP(3),
    "last_pushed_hash" TEXT,
    "last_received_hash" TEXT,
    "tombstoned_at" TIMESTAMP(3),
    "last_error" JSONB,
    "created_at" TIMESTAMP(3) NOT NULL,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "maestrano_id_maps_pkey" PRIMARY KEY ("seq")
);

-- CreateTable
CREATE TABLE "maestrano_cursors" (
    "tenant" TEXT NOT NULL,
    "group_id" TEXT NOT NULL,
    "entity" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "position" DOUBLE PRECISION NOT NULL,
    "data" JSONB NOT NULL,
    "complete" BOOLEAN NOT NULL,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "maestrano_cursors_pkey" PRIMARY KEY ("tenant","group_id","entity","kind")
);

-- CreateTable
CREATE TABLE "maestrano_jobs" (
    "id" BIGSERIAL NOT NULL,
    "type" TEXT NOT NULL,
    "tenant" TEXT,
    "group_id" TEXT,
    "payload" JSONB NOT NULL,
    "dedupe_key" TEXT,
    "ordering_key" TEXT,
    "wait_key" TEXT,
    "status" TEXT NOT NULL,
    "attempts" INTEGER NOT NULL,
    "max_attempts" INTEGER NOT NULL,
    "run_at" TIMESTAMP(3) NOT NULL,
    "lease_owner" TEXT,
    "lease_expires_at" TIMESTAMP(3),
    "last_error" JSONB,
    "created_at" TIMESTAMP(3) NOT NULL,
    "updated_at" TIMESTAMP(3) NOT NULL,
    "completed_at" TIMESTAMP(3),

    CONSTRAINT "maestrano_jobs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "maestrano_job_guards" (
    "ordering_key" TEXT NOT NULL,
    "job_id" BIGINT NOT NULL,
    "lease_expires_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "maestrano_job_guards_pkey" PRIMARY KEY ("ordering_key")
);

-- CreateTable
CREATE TABLE "maestrano_ledger" (
    "key" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "owner" TEXT,
    "claim_expires_at" TIMESTAMP(3),
    "intent" JSONB NOT NULL,
    "outcome" JSONB,
    "created_at" TIMESTAMP(3) NOT NULL,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "maestrano_ledger_pkey" PRIMARY KEY ("key")
);

-- CreateTable
CREATE TABLE "maestrano_replay" (
    "tenant" TEXT NOT NULL,
    "assertion_id" TEXT NOT NULL,
    "expires_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "maestrano_replay_pkey" PRIMARY KEY ("tenant","assertion_id")
);

-- CreateTable
CREATE TABLE "maestrano_locks" (
    "key" TEXT NOT NULL,
    "owner" TEXT NOT NULL,
    "expires_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "maestrano_locks_pkey" PRIMARY KEY ("key")
);

-- CreateIndex
CREATE INDEX "maestrano_groups_tenant_status_idx" ON "maestrano_groups"("tenant", "status");

-- CreateIndex
CREATE INDEX "maestrano_users_tenant_user_id_idx" ON "maestrano_users"("tenant", "user_id");

-- CreateIndex
CREATE INDEX "maestrano_memberships_tenant_group_id_idx" ON "maestrano_memberships"("tenant", "group_id");

-- CreateIndex
CREATE INDEX "maestrano_id_maps_scope_idx" ON "maestrano_id_maps"("tenant", "group_id", "entity", "seq");

-- CreateIndex
CREATE UNIQUE INDEX "maestrano_id_maps_connec_key" ON "maestrano_id_maps"("tenant", "group_id", "entity", "connec_id");

-- CreateIndex
CREATE UNIQUE INDEX "maestrano_id_maps_local_key" ON "maestrano_id_maps"("tenant", "group_id", "entity", "local_id");

-- CreateIndex
CREATE UNIQUE INDEX "maestrano_jobs_dedupe_key" ON "maestrano_jobs"("dedupe_key");

-- CreateIndex
CREATE INDEX "maestrano_jobs_due_idx" ON "maestrano_jobs"("status", "run_at");

-- CreateIndex
CREATE INDEX "maestrano_jobs_ordering_idx" ON "maestrano_jobs"("ordering_key", "status");

-- CreateIndex
CREATE INDEX "maestrano_jobs_wait_idx" ON "maestrano_jobs"("wait_key");

-- CreateIndex
CREATE INDEX "maestrano_jobs_completed_idx" ON "maestrano_jobs"("status", "completed_at");

-- CreateIndex
CREATE INDEX "maestrano_replay_expires_idx" ON "maestrano_replay"("expires_at");
