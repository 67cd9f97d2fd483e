// Reads of the rows the rollup has not absorbed yet (the raw tail of GET /metrics, the next rollup
// refresh) cost what is new, never the size of the table, whatever the planner's statistics say:
// measured in heap blocks of events each one touches, from Postgres' own counters.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerMetrics } from '../../src/metrics/answer-metrics.js';
import { CellBitmapCache } from '../../src/metrics/cell-bitmap-cache.js';
import { MetricsCache } from '../../src/metrics/metrics-cache.js';
import { refreshRollup, type RefreshResult } from '../../src/sql/refresh-rollup.js';
import {
  createTestDatabase,
  queuedPool,
  servicePool,
  type TestDatabase,
} from '../helpers/database.js';
import { metricsQueryOf } from '../helpers/metrics-oracle.js';
import { waitUntil } from '../helpers/wait-until.js';

const secondsPerDay = 86_400;
/** 2023-11-15 UTC, ten days. */
const spanStart = 19_676 * secondsPerDay;
const spanDays = 10;
const absorbedRows = 200_000;
const tailRows = 10;

let db: TestDatabase;
let nextEvent = 0;
let pools = 0;

/** `count` events over the span in one transaction, through a pool of the caller's. */
async function insertEvents(pool: pg.Pool, count: number): Promise<void> {
  await pool.query(
    `INSERT INTO events (idem_key, event_id, event_name, user_id, occurred_at)
     SELECT md5('i' || n)::uuid, n::text, 'view-' || (n % 5), 'user-' || (n % 1000),
            to_timestamp($3 + n % $4)
     FROM generate_series($1::int, $1::int + $2::int - 1) AS n`,
    [nextEvent, count, spanStart, spanDays * secondsPerDay],
  );
  nextEvent += count;
}

/** Runs `work` on a pool of its own and returns the heap blocks of events it read or found in
 *  shared buffers. A backend adds its counters to pg_statio as it exits, before it leaves
 *  pg_stat_activity: the pool is ended and its backends waited out. */
async function heapBlocksTouchedBy<T>(
  work: (pool: pg.Pool) => Promise<T>,
): Promise<{ result: T; blocks: number }> {
  const blocks = async () =>
    Number(
      (
        await db.query<{ blocks: string }>(
          `SELECT heap_blks_read + heap_blks_hit AS blocks FROM pg_statio_user_tables
           WHERE relname = 'events'`,
        )
      )[0]!.blocks,
    );
  const before = await blocks();
  const applicationName = `pulse-tail-reads-${pools++}`;
  const pool = servicePool(db.dsn, applicationName);
  let result: T;
  try {
    result = await work(pool);
  } finally {
    await pool.end();
  }
  await waitUntil(
    `the backends of ${applicationName} to exit`,
    async () =>
      (
        await db.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = $1`, [
          applicationName,
        ])
      ).length === 0,
    { timeoutMs: 10_000 },
  );
  return { result, blocks: (await blocks()) - before };
}

/** A tenth of the table: scanning the absorbed rows touches every page, the tail a few. */
async function tableTenth(): Promise<number> {
  const [row] = await db.query<{ pages: string }>(
    "SELECT pg_relation_size('events') / current_setting('block_size')::int AS pages",
  );
  return Number(row!.pages) / 10;
}

beforeAll(async () => {
  db = await createTestDatabase();
  // As on a table autovacuum has not analyzed yet: no statistics, for the whole file.
  await db.query('ALTER TABLE events SET (autovacuum_enabled = false)');
  await heapBlocksTouchedBy(async (pool) => {
    await insertEvents(pool, absorbedRows);
    await refreshRollup(pool, 600_000);
  });
});
afterAll(async () => {
  await db?.close();
});

describe('reads of the rows newer than the rollup, on a table without statistics', () => {
  it('a /metrics read touches only the pages of rows the rollup has not absorbed', async () => {
    await heapBlocksTouchedBy((pool) => insertEvents(pool, tailRows));
    const cellBitmaps = new CellBitmapCache(16 * 1024 * 1024);
    const { result, blocks } = await heapBlocksTouchedBy(async (pool) => {
      const sources = {
        pool: queuedPool(pool),
        cache: new MetricsCache({ ttlMs: 0, maxKeys: 10 }),
        cellBitmaps,
      };
      const query = metricsQueryOf({
        from: spanStart,
        to: spanStart + spanDays * secondsPerDay - 1,
        eventName: 'view-0',
        channel: null,
        groupByDay: false,
      });
      return JSON.parse((await answerMetrics(sources, 1, query)).answer.dataJson) as {
        totals: { count: number };
      };
    });

    // The absorbed view-0 rows come from day cells, the tail's from the raw table.
    expect(result.totals.count).toBe((absorbedRows + tailRows) / 5);
    expect(blocks).toBeGreaterThan(0); // the counters arrived
    expect(blocks).toBeLessThan(await tableTenth());
  });

  it('a rollup refresh touches only the pages of rows it absorbs', async () => {
    await heapBlocksTouchedBy((pool) => insertEvents(pool, tailRows));
    const { result, blocks } = await heapBlocksTouchedBy((pool) => refreshRollup(pool));

    expect(result).toMatchObject<Partial<RefreshResult>>({
      ran: true,
      rows: nextEvent - absorbedRows,
    });
    expect(blocks).toBeGreaterThan(0); // the counters arrived
    expect(blocks).toBeLessThan(await tableTenth());
  });
});
