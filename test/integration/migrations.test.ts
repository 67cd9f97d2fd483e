// N processes starting together against a brand-new database: the advisory lock lets exactly one
// apply each migration, and every one of them succeeds. And the upgrade paths of migrations that
// change derived data: 0003 rebuilds the rollup, 0004 re-tags day cells in place, 0006 puts every
// stored row in the default project.
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
import { answerMetrics } from '../../src/metrics/answer-metrics.js';
import { MetricsCache } from '../../src/metrics/metrics-cache.js';
import { parseMetricsQuery } from '../../src/metrics/metrics-query.js';
import { CellBitmapCache } from '../../src/metrics/cell-bitmap-cache.js';
import { idempotencyKey, insertEvents } from '../../src/sql/insert-events.js';
import { rollupGrains, rollupSpans } from '../../src/sql/rollup-spans.js';
import { encodeUserSet } from '../../src/sql/user-set-format.js';
import { queuedPool } from '../helpers/database.js';
import { withDatabase } from '../helpers/global-setup.js';
import { metricsQueryOf, numbersOf, type MetricsNumbers } from '../helpers/metrics-oracle.js';

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
 *  migration left it; `test` runs against it, then the database is dropped. `migrateThrough`
 *  applies the migrations up to and including the one named, as that release would. */
async function withDatabaseBefore(
  firstNew: string,
  test: (pool: pg.Pool, migrateThrough: (last: string) => Promise<string[]>) => Promise<void>,
): Promise<void> {
  const upgradeName = `pulse_test_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${upgradeName}`));
  const [pool] = processPools(1, withDatabase(serverDsn, upgradeName));
  const migrations = await mkdtemp(join(tmpdir(), 'pulse-migrations-'));
  const migrateThrough = async (last: string) => {
    for (const file of (await listMigrations()).filter((f) => f < `${last}~`)) {
      await copyFile(join(migrationsDir, file), join(migrations, file));
    }
    return migrate(pool!, migrations);
  };
  try {
    await migrateThrough(String(Number(firstNew) - 1).padStart(4, '0'));
    await test(pool!, migrateThrough);
  } finally {
    await pool!.end();
    await rm(migrations, { recursive: true, force: true });
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
    withDatabaseBefore('0004', async (pool, migrateThrough) => {
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

      // Through 0006, the schema the refresh below writes; 0007 would rebuild the rollup.
      expect(await migrateThrough('0006')).toEqual(
        (await listMigrations()).filter((f) => f >= '0004' && f < '0007'),
      );
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

  it('puts every event and rollup cell in the default project with every answer unchanged when 0006 upgrades a database', () =>
    withDatabaseBefore('0006', async (pool, migrateThrough) => {
      const day = 19_950;
      const events = Array.from({ length: 240 }, (_, i) => ({
        event_id: `before-projects-${i}`,
        event_name: i % 2 === 0 ? 'view' : 'buy',
        user_id: `user-${i % 37}`,
        timestamp: day * 86_400 + i * 1500,
        ...(i % 3 === 0 ? {} : { channel: i % 5 === 0 ? 'ios' : 'web' }),
      }));
      await pool.query(
        `INSERT INTO events (idem_key, event_id, event_name, user_id, occurred_at, channel)
         SELECT k, id, n, u, to_timestamp(t), c
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[])
           AS e(k, id, n, u, t, c)`,
        [
          events.map(idempotencyKey),
          events.map((e) => e.event_id),
          events.map((e) => e.event_name),
          events.map((e) => e.user_id),
          events.map((e) => e.timestamp),
          events.map((e) => e.channel ?? null),
        ],
      );
      await buildRollupBeforeProjects(pool);
      const queries = [
        { from: day * 86_400, to: (day + 5) * 86_400 - 1 },
        { from: day * 86_400 + 5000, to: day * 86_400 + 200_000 },
      ].flatMap((w) =>
        [null, 'view'].flatMap((eventName) =>
          [null, 'web'].map((channel) => ({ ...w, eventName, channel, groupByDay: true })),
        ),
      );
      const truths = [];
      for (const q of queries) truths.push(await rawTruth(pool, q));
      const cellsBefore = await allCells(pool);

      expect(await migrateThrough('0006')).toEqual(['0006_events_by_project.sql']);
      const { rows: owners } = await pool.query<{ owner: string }>(
        `SELECT 'events ' || project_id AS owner FROM events
         UNION SELECT 'rollup_cells ' || project_id FROM rollup_cells
         UNION SELECT 'rollup_hour_cells ' || project_id FROM rollup_hour_cells ORDER BY 1`,
      );
      expect(owners.map((r) => r.owner)).toEqual([
        'events 1',
        'rollup_cells 1',
        'rollup_hour_cells 1',
      ]);
      expect(await allCells(pool)).toEqual(cellsBefore);
      // Nothing new to absorb: the answers below come from the migrated cells.
      expect(await refreshRollup(pool)).toMatchObject({ ran: true, rows: 0 });
      const sources = {
        pool: queuedPool(pool),
        cache: new MetricsCache({ ttlMs: 0, maxKeys: 10 }),
        cellBitmaps: new CellBitmapCache(1024 * 1024),
      };
      const answerOf = async (projectId: number, q: (typeof queries)[number]) => {
        const { answer } = await answerMetrics(sources, projectId, metricsQueryOf(q));
        return numbersOf(JSON.parse(answer.dataJson) as MetricsNumbers);
      };
      const answers = [];
      for (const q of queries) answers.push(await answerOf(1, q));
      expect(answers).toEqual(truths);
      expect((await answerOf(2, queries[0]!)).totals).toEqual({ count: 0, unique_users: 0 });
      // The keys stored before are the default project's keys.
      expect((await insertEvents(pool, events.slice(0, 10))).inserted).toBe(0);
      expect((await insertEvents(pool, events.slice(0, 10), 2)).inserted).toBe(10);
    }));
  it('rebuilds the rollup when 0007 upgrades, so a breakdown by channel counts events with no channel exactly', () =>
    withDatabaseBefore('0007', async (pool, migrateThrough) => {
      const day = 19_960;
      const events = Array.from({ length: 120 }, (_, i) => ({
        event_id: `before-null-channel-cells-${i}`,
        event_name: 'view',
        user_id: `user-${i % 23}`,
        timestamp: day * 86_400 + i * 700,
        ...(i % 3 === 0 ? {} : { channel: i % 2 === 0 ? 'ios' : 'web' }),
      }));
      await insertEvents(pool, events);
      await refreshRollup(pool);
      // As the release before wrote it: no cells for events without a channel.
      await pool.query('DELETE FROM rollup_cells WHERE grain >= 4');
      await pool.query('DELETE FROM rollup_hour_cells WHERE grain >= 4');
      expect(await migrateThrough('0007')).toEqual(['0007_cells_without_channel.sql']);
      expect(await allCells(pool)).toEqual([]);
      expect(await refreshRollup(pool)).toMatchObject({ ran: true, rows: events.length });
      const { rows: truth } = await pool.query<{ value: string | null }>(
        `SELECT channel AS value, count(*)::int AS count, count(DISTINCT user_id)::int AS unique_users
         FROM events GROUP BY 1 ORDER BY 2 DESC, channel COLLATE "C" NULLS LAST`,
      );
      const sources = {
        pool: queuedPool(pool),
        cache: new MetricsCache({ ttlMs: 0, maxKeys: 10 }),
        cellBitmaps: new CellBitmapCache(1024 * 1024),
      };
      const query = parseMetricsQuery(
        `from=${day * 86_400}&to=${(day + 2) * 86_400 - 1}&breakdown=channel`,
        day * 86_400,
        { maxWindowDays: 10, maxBuckets: 10, maxSeriesBuckets: 100 },
      );
      if (!query.ok) throw new Error('the query is valid');
      const { answer } = await answerMetrics(sources, 1, query.query);
      const { breakdown } = JSON.parse(answer.dataJson) as { breakdown: { values: unknown } };
      expect(truth.map((r) => r.value)).toContain(null);
      expect(breakdown.values).toEqual(truth);
    }));
});

/** The rollup as the refresher before projects wrote it: every day and hour cell of every grain. */
async function buildRollupBeforeProjects(pool: pg.Pool): Promise<void> {
  await pool.query(
    'INSERT INTO user_ids (user_id) SELECT DISTINCT user_id FROM events ORDER BY user_id',
  );
  for (const { table, unit, seconds } of Object.values(rollupSpans)) {
    // The grains of that release: none for events with no channel yet.
    for (const grain of rollupGrains.filter((g) => !g.channelIsNull)) {
      const { rows } = await pool.query<{
        start: number;
        event_name: string;
        channel: string;
        event_count: number;
        user_ints: number[];
      }>(
        `SELECT floor(extract(epoch FROM occurred_at) / ${seconds})::int AS start,
                ${grain.byEventName ? 'event_name' : "''"} AS event_name,
                ${grain.byChannel ? 'channel' : "''"} AS channel,
                count(*)::int AS event_count, array_agg(DISTINCT user_int) AS user_ints
         FROM events JOIN user_ids USING (user_id)
         WHERE ${grain.byChannel ? 'channel IS NOT NULL' : 'true'} GROUP BY 1, 2, 3`,
      );
      for (const r of rows) {
        await pool.query(
          `INSERT INTO ${table} (grain, ${unit}, event_name, channel, event_count, users)
           VALUES ($1, $2, $3, $4, $5, $6)`,
          [
            grain.code,
            r.start,
            r.event_name,
            r.channel,
            r.event_count,
            Buffer.from(encodeUserSet(bitmapWith(null, r.user_ints))),
          ],
        );
      }
    }
  }
  await pool.query(
    'UPDATE rollup_state SET snapshot = pg_current_snapshot(), refreshed_at = now()',
  );
}

/** Every rollup cell of both spans, without its project. */
async function allCells(pool: pg.Pool): Promise<unknown[]> {
  const { rows } = await pool.query<Record<string, unknown>>(
    `SELECT 'day' AS span, grain, day AS start, event_name, channel, event_count::int, users
     FROM rollup_cells
     UNION ALL SELECT 'hour', grain, hour, event_name, channel, event_count::int, users
     FROM rollup_hour_cells ORDER BY 1, 2, 3, 4, 5`,
  );
  return rows;
}

/** count(*) and count(DISTINCT user_id) straight from the raw table, in /metrics' shape. */
async function rawTruth(
  pool: pg.Pool,
  q: { from: number; to: number; eventName: string | null; channel: string | null },
): Promise<unknown> {
  const filter = `extract(epoch FROM occurred_at) BETWEEN $1 AND $2
    AND ($3::text IS NULL OR event_name = $3) AND ($4::text IS NULL OR channel = $4)`;
  const values = [q.from, q.to, q.eventName, q.channel];
  const { rows: totals } = await pool.query<Record<string, number>>(
    `SELECT count(*)::int AS count, count(DISTINCT user_id)::int AS unique_users
     FROM events WHERE ${filter}`,
    values,
  );
  const { rows: buckets } = await pool.query<Record<string, number>>(
    `SELECT (floor(extract(epoch FROM occurred_at) / 86400) * 86400)::int AS bucket_start,
            count(*)::int AS count, count(DISTINCT user_id)::int AS unique_users
     FROM events WHERE ${filter} GROUP BY 1 ORDER BY 1`,
    values,
  );
  return { totals: totals[0], buckets };
}
