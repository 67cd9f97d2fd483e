// A window ending inside an hour (a window ending now) is read to the end of that hour when the
// project has no row after `to` in it: the hour's cell and the rows not absorbed yet, not every row
// of the hour. One absorbed row deleted behind the rollup's back tells which way an answer was
// read: the cell still counts it, the rows do not.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerMetrics } from '../../src/metrics/answer-metrics.js';
import { CellBitmapCache } from '../../src/metrics/cell-bitmap-cache.js';
import { MetricsCache } from '../../src/metrics/metrics-cache.js';
import { parseMetricsQuery } from '../../src/metrics/metrics-query.js';
import { refreshRollup } from '../../src/sql/refresh-rollup.js';
import {
  createTestDatabase,
  queuedPool,
  servicePool,
  type TestDatabase,
} from '../helpers/database.js';

/** 2023-11-15 05:00 UTC: the window's last hour. */
const hour = 19_676 * 86_400 + 5 * 3600;
const from = hour - 4 * 3600 + 77;
/** Half past: the last hour is a partial edge. */
const to = hour + 1799;

let db: TestDatabase;
let pool: pg.Pool;
let nextEvent = 0;

async function insertEvents(count: number, at: (n: string) => string) {
  await db.query(
    `INSERT INTO events (idem_key, event_id, event_name, user_id, occurred_at)
     SELECT md5('h' || n)::uuid, n::text, 'view', 'u' || (n % 50), to_timestamp(${at('n')})
     FROM generate_series($1::int, $1::int + $2::int - 1) AS n`,
    [nextEvent, count],
  );
  nextEvent += count;
}

async function answer(query: string) {
  const parsed = parseMetricsQuery(`from=${from}&to=${to}&${query}`, to, {
    maxWindowDays: 366,
    maxBuckets: 10_000,
    maxSeriesBuckets: 100_000,
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problem));
  const sources = {
    pool: queuedPool(pool),
    cache: new MetricsCache({ ttlMs: 0, maxKeys: 10 }),
    cellBitmaps: new CellBitmapCache(16 * 1024 * 1024),
  };
  const { dataJson } = (await answerMetrics(sources, 1, parsed.query)).answer;
  return JSON.parse(dataJson) as {
    totals: { count: number; unique_users: number };
    buckets?: { bucket_start: number; count: number }[];
  };
}

async function storedCount(since = from): Promise<number> {
  const [row] = await db.query(
    `SELECT count(*)::int AS count FROM events
     WHERE extract(epoch FROM occurred_at) BETWEEN ${since} AND ${to}`,
  );
  return row!.count as number;
}

beforeAll(async () => {
  db = await createTestDatabase();
  pool = servicePool(db.dsn, 'pulse-hour-end');
  // Every 30 s from the window's start to `to`, the last hour's first half included.
  await insertEvents(537, (n) => `${from} + ${n} * 30`);
  await refreshRollup(pool);
  await db.query(
    `DELETE FROM events WHERE occurred_at >= to_timestamp(${hour}) AND event_id = '500'`,
  );
});

afterAll(async () => {
  await pool?.end();
  await db?.close();
});

describe('a window ending inside its last hour', () => {
  it('counts that hour from its cell and the tail while the project has no row after `to` in it', async () => {
    const stored = await storedCount();
    // The cell still holds the deleted row.
    expect((await answer('')).totals.count).toBe(stored + 1);
    const byHour = await answer('group_by=hour&tz=UTC');
    expect(byHour.buckets!.at(-1)).toEqual({
      bucket_start: hour,
      count: (await storedCount(hour)) + 1,
      unique_users: expect.any(Number) as number,
    });
    expect(byHour.totals.count).toBe(stored + 1);

    // Rows not absorbed yet, inside [hour, to], come from the tail.
    await insertEvents(5, (n) => `${hour} + 600 + ${n} % 7`);
    expect((await answer('')).totals.count).toBe(stored + 1 + 5);
  });

  it('reads the rows of that hour where a bucket ends inside it', async () => {
    // Kolkata's hours begin at half past the UTC hour: the last bucket ends at `to`.
    expect((await answer('group_by=hour&tz=Asia/Kolkata')).totals.count).toBe(await storedCount());
  });

  it('reads the rows of that hour once the project has a row after `to` in it, absorbed or not', async () => {
    await insertEvents(1, () => `${to} + 1`);
    expect((await answer('')).totals.count).toBe(await storedCount());
    await refreshRollup(pool);
    expect((await answer('')).totals.count).toBe(await storedCount());
    expect((await answer('group_by=hour&tz=UTC')).totals.count).toBe(await storedCount());
  });
});
