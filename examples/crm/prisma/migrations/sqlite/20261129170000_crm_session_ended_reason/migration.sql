-- AlterTable
-- Why Maestrano ended a session early (its company cancelled, its user's access removed). The
-- row is kept, granting nothing, so that the user's next request says why instead of showing
-- the plain sign-in page. NULL: a live session.
ALTER TABLE "crm_sessions" ADD COLUMN "ended_reason" TEXT;
