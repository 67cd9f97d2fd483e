// N processes starting together against a brand-new database: the advisory lock lets exactly one
// apply each migration, and every one of them succeeds.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createPool } from '../../src/sql/create-pool.js';
import { listMigrations, migrate } from '../../src/sql/migrate.js';
import { withDatabase } from '../helpers/global-setup.js';

const serverDsn = inject('postgresDsn');
// Not cloned from the migrated template: this database starts with nothing in it.
const name = `pulse_test_${randomBytes(6).toString('hex')}`;
const dsn = withDatabase(serverDsn, name);

async function admin<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverDsn });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
});
afterAll(async () => {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
});

/** One pool per caller, as if each were its own server process. */
function processPools(count: number): pg.Pool[] {
  return Array.from({ length: count }, (_, i) =>
    createPool(
      {
        connectionString: dsn,
        applicationName: `pulse-migrate-test-${i}`,
        max: 1,
        connectTimeoutMs: 10_000,
        statementTimeoutMs: 30_000,
        queryTimeoutMs: 40_000,
      },
      pino({ level: 'silent' }),
    ),
  );
}

describe('migrations', () => {
  it('applies each migration exactly once when five callers start together on an empty database', async () => {
    const files = await listMigrations();
    const pools = processPools(5);
    try {
      const firstRun = await Promise.all(pools.map((pool) => migrate(pool)));
      // Every file applied by exactly one caller; the others found it done.
      expect(firstRun.flat().sort()).toEqual(files);

      const check = pools[0]!;
      const recorded = await check.query<{ name: string }>(
        'SELECT name FROM schema_migrations ORDER BY name',
      );
      expect(recorded.rows.map((r) => r.name)).toEqual(files);
      const tables = await check.query<{ events: string | null }>(
        "SELECT to_regclass('public.events')::text AS events",
      );
      expect(tables.rows).toEqual([{ events: 'events' }]);

      const secondRun = await Promise.all(pools.map((pool) => migrate(pool)));
      expect(secondRun).toEqual([[], [], [], [], []]);
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
  });
});
