-- AlterTable
-- When the id map was last in sync between the app and Connec! (conflict detection). Existing
-- rows stay NULL: the SDK then falls back to updated_at, as before this column existed.
ALTER TABLE "maestrano_id_maps" ADD COLUMN "synced_at" TIMESTAMP(3);
