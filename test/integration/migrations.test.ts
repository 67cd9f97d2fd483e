// N processes starting together against a brand-new database: the advisory lock lets exactly one
// apply each migration, and every one of them succeeds. And the upgrade paths of migrations that
// change derived data: 0003 rebuilds the rollup, 0004 re-tags day cells in place.
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createPool } from '../../src/sql/create-pool.js';
import { listMigrations, migrate, migrationsDir } from '../../src/sql/migrate.js';
import {
  bitmapWith,
  decodeUserSet,
  trimmed,
  userSetHas,
  userSetSize,
} from '../../src/sql/user-set-format.js';
import { refreshRollup } from '../../src/sql/refresh-rollup.js';
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

/** A fresh database migrated only up to (not including) `firstNew`, as the release before that
 *  migration left it; `test` runs against it, then the database is dropped. */
async function withDatabaseBefore(
  firstNew: string,
  test: (pool: pg.Pool) => Promise<void>,
): Promise<void> {
  const upgradeName = `pulse_test_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${upgradeName}`));
  const [pool] = processPools(1, withDatabase(serverDsn, upgradeName));
  const olderMigrations = await mkdtemp(join(tmpdir(), 'pulse-migrations-'));
  try {
    for (const file of (await listMigrations()).filter((f) => f < firstNew)) {
      await copyFile(join(migrationsDir, file), join(olderMigrations, file));
    }
    await migrate(pool!, olderMigrations);
    await test(pool!);
  } finally {
    await pool!.end();
    await rm(olderMigrations, { recursive: true, force: true });
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${upgradeName} WITH (FORCE)`));
  }
}

/** One pool per caller, as if each were its own server process. */
function processPools(count: number, connectionString = dsn): pg.Pool[] {
  return Array.from({ length: count }, (_, i) =>
    createPool(
      {
        connectionString,
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

  it('rebuilds the rollup with hour cells when 0003 upgrades a database whose rollup predates it', () =>
    withDatabaseBefore('0003', async (pool) => {
      // A database as the previous release left it: events, and a rollup that absorbed them.
      const day = 19_800;
      await pool.query(
        `INSERT INTO events (idem_key, event_name, user_id, occurred_at)
         SELECT gen_random_uuid(), 'upgrade', 'user-' || g, to_timestamp($1 + g * 600)
         FROM generate_series(1, 30) g`,
        [day * 86_400],
      );
      await pool.query(
        `INSERT INTO user_ids (user_id) SELECT DISTINCT user_id FROM events ORDER BY user_id`,
      );
      await pool.query(
        `INSERT INTO rollup_cells VALUES (0, $1, '', '', 30, '\\xffffffff3f'::bytea)`,
        [day],
      );
      await pool.query('UPDATE rollup_state SET snapshot = pg_current_snapshot()');

      expect(await migrate(pool)).toEqual((await listMigrations()).filter((f) => f >= '0003'));
      expect(await refreshRollup(pool)).toMatchObject({ ran: true, rows: 30 });
      const { rows } = await pool.query<{ days: number; hours: number }>(
        `SELECT (SELECT sum(event_count) FROM rollup_cells WHERE grain = 0)::int AS days,
                (SELECT sum(event_count) FROM rollup_hour_cells WHERE grain = 0)::int AS hours`,
      );
      expect(rows).toEqual([{ days: 30, hours: 30 }]);
    }));

  it('keeps every day cell exact when 0004 re-tags the plain bitmaps an older rollup wrote', () =>
    withDatabaseBefore('0004', async (pool) => {
      // 1,000 users first, so the cell's 30 users sit at user_ints 1000–1029: sparse enough that
      // the list (121 bytes) is smaller than the bitmap (129).
      await pool.query(
        `INSERT INTO user_ids (user_id) SELECT 'filler-' || g FROM generate_series(1, 1000) g`,
      );
      const day = 19_900;
      const insertEvents = (from: number, to: number) =>
        pool.query(
          `INSERT INTO events (idem_key, event_name, user_id, occurred_at)
           SELECT gen_random_uuid(), 'upgrade', 'user-' || g, to_timestamp($1 + g * 600)
           FROM generate_series($2::int, $3::int) g`,
          [day * 86_400, from, to],
        );
      await insertEvents(1, 30);
      const { rows: known } = await pool.query<{ user_int: number }>(
        `INSERT INTO user_ids (user_id) SELECT 'user-' || g FROM generate_series(1, 30) g
         RETURNING user_int`,
      );
      const userInts = known.map((r) => r.user_int);
      // The day cell as the previous release wrote it: a plain bitmap, no tag.
      await pool.query(`INSERT INTO rollup_cells VALUES (0, $1, '', '', 30, $2)`, [
        day,
        Buffer.from(trimmed(bitmapWith(null, userInts))),
      ]);
      await pool.query('UPDATE rollup_state SET snapshot = pg_current_snapshot()');
      const dayCell = async () => {
        const { rows } = await pool.query<{ event_count: number; users: Buffer }>(
          `SELECT event_count::int, users FROM rollup_cells WHERE grain = 0 AND day = $1`,
          [day],
        );
        return rows[0]!;
      };

      expect(await migrate(pool)).toEqual((await listMigrations()).filter((f) => f >= '0004'));
      const retagged = await dayCell();
      expect(retagged.users[0]).toBe(0);
      const plain = decodeUserSet(retagged.users);
      expect(userSetSize(plain)).toBe(30);
      expect(userInts.every((i) => userSetHas(plain, i))).toBe(true);

      // The next refresh that touches the cell rewrites it in the smaller form, the list.
      await insertEvents(31, 31);
      expect(await refreshRollup(pool)).toMatchObject({ ran: true, rows: 1 });
      const rewritten = await dayCell();
      expect(rewritten.event_count).toBe(31);
      expect(rewritten.users[0]).toBe(1);
      const list = decodeUserSet(rewritten.users);
      expect(list).toBeInstanceOf(Uint32Array);
      expect([...list]).toEqual([...userInts, 1030].sort((a, b) => a - b));
    }));
});
