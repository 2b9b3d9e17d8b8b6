/**
 * The PostgreSQL server the integration tests create throwaway databases on (shared by
 * tests/e2e and tests/reliability). `MAESTRANO_TEST_PG_URL` points at another server.
 */
import pg from 'pg';

export const PG_SERVER_URL = process.env.MAESTRANO_TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

/** Runs one statement on the server's admin database (CREATE/DROP DATABASE, …). */
export async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_SERVER_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** null when PostgreSQL answers; otherwise why not (printed as the skip reason). */
export async function pgUnavailableReason(): Promise<string | null> {
  try {
    await adminQuery('SELECT 1');
    return null;
  } catch (error) {
    return `PostgreSQL not reachable at ${new URL(PG_SERVER_URL).host}: ${error instanceof Error ? error.message : String(error)}`;
  }
}
