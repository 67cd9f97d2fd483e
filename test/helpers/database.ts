// A fresh database per test file, cloned from the migrated template, plus a small query helper.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { inject } from 'vitest';
import { createPool } from '../../src/sql/create-pool.js';
import { QueuedPool } from '../../src/sql/queued-pool.js';
import { templateDatabase, withDatabase } from './global-setup.js';

export interface TestDatabase {
  readonly dsn: string;
  readonly name: string;
  query<R extends pg.QueryResultRow = Record<string, unknown>>(
    sql: string,
    values?: unknown[],
  ): Promise<R[]>;
  close(): Promise<void>;
}

/** Every database a test creates is named pulse_test_*: nothing else is ever touched. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const serverDsn = inject('postgresDsn');
  const name = `pulse_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverDsn });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name} TEMPLATE ${templateDatabase}`);
  await admin.end();
  const dsn = withDatabase(serverDsn, name);
  const pool = new pg.Pool({ connectionString: dsn, max: 2 });
  pool.on('error', () => undefined); // tests terminate connections on purpose
  return {
    dsn,
    name,
    query: async <R extends pg.QueryResultRow>(sql: string, values?: unknown[]) =>
      (await pool.query<R>(sql, values)).rows,
    close: () => pool.end(),
  };
}

/** The read path's pool for tests that call it directly: every connection of `pool`, and a queue
 *  far longer and more patient than any test needs. */
export function queuedPool(pool: pg.Pool): QueuedPool {
  return new QueuedPool(pool, { waitMs: 60_000, maxWaiting: 1000 });
}

/** A pool made as the server makes its own, for tests that call the SQL modules directly. */
export function servicePool(dsn: string, applicationName: string, max = 2): pg.Pool {
  return createPool(
    {
      connectionString: dsn,
      applicationName,
      max,
      connectTimeoutMs: 10_000,
      statementTimeoutMs: 30_000,
      queryTimeoutMs: 40_000,
    },
    pino({ level: 'silent' }),
  );
}
