-- AlterTable
-- The sub-record ids (invoice lines) the link-back of the version last applied carries, as JSON
-- text the SDK writes with that version: a replay of it after a crash links them back again.
-- Existing rows stay NULL (nothing owed).
ALTER TABLE "maestrano_id_maps" ADD COLUMN "link_sub_ids" TEXT;
