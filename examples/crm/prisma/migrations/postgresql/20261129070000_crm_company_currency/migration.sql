-- AlterTable
-- The Maestrano group's currency (the subscription's), used for the company's ad-hoc charges.
-- Existing rows get 'AUD', the currency every charge used before this column existed.
ALTER TABLE "crm_companies" ADD COLUMN "currency" TEXT NOT NULL DEFAULT 'AUD';
