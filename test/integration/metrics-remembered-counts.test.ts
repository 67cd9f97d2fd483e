// Counts remembered between answers (bucket-memo.ts) are named by the versions of the day cells
// they were made of, so late events absorbed anywhere they cover change the next answer: here, the
// whole hours of a window's partial first and last days, which a breakdown's totals remember
// together with its whole days.
import type pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
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

const day = 86_400;
/** 2023-11-15 UTC. */
const day0 = 19_676 * day;
const from = day0 + 5 * 3600 + 1234;
const to = day0 + 11 * day + 3 * 3600 + 17;

let db: TestDatabase;
let pool: pg.Pool;
let nextEvent = 0;

async function insertEvents(count: number, at: (n: string) => string, user: string) {
  await db.query(
    `INSERT INTO events (idem_key, event_id, event_name, user_id, occurred_at)
     SELECT md5('r' || n)::uuid, n::text, 'view-' || (n % 3), ${user}, to_timestamp(${at('n')})
     FROM generate_series($1::int, $1::int + $2::int - 1) AS n`,
    [nextEvent, count],
  );
  nextEvent += count;
}

beforeAll(async () => {
  db = await createTestDatabase();
  pool = servicePool(db.dsn, 'pulse-remembered-counts');
  await insertEvents(5000, (n) => `${day0} + (${n} * 211) % (12 * ${day})`, `'u' || (n % 300)`);
  await refreshRollup(pool);
});

afterAll(async () => {
  await pool?.end();
  await db?.close();
});

const sources = () => ({
  pool: queuedPool(pool),
  cache: new MetricsCache({ ttlMs: 0, maxKeys: 10 }),
  cellBitmaps: new CellBitmapCache(16 * 1024 * 1024),
});

async function answer(s: ReturnType<typeof sources>) {
  const parsed = parseMetricsQuery(`from=${from}&to=${to}&breakdown=event_name&limit=2`, to, {
    maxWindowDays: 36_600,
    maxBuckets: 100_000,
    maxSeriesBuckets: 1_000_000,
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problem));
  const { dataJson } = (await answerMetrics(s, 1, parsed.query)).answer;
  const { totals, breakdown } = JSON.parse(dataJson) as {
    totals: unknown;
    breakdown: { values: unknown[]; other: unknown };
  };
  return { totals, values: breakdown.values, other: breakdown.other };
}

async function truth() {
  const inWindow = `extract(epoch FROM occurred_at) BETWEEN ${from} AND ${to}`;
  const counts = 'count(*)::int AS count, count(DISTINCT user_id)::int AS unique_users';
  const [totals] = await db.query(`SELECT ${counts} FROM events WHERE ${inWindow}`);
  const values = await db.query(
    `SELECT event_name AS value, ${counts} FROM events WHERE ${inWindow}
     GROUP BY 1 ORDER BY count DESC, event_name COLLATE "C" LIMIT 2`,
  );
  const [other] = await db.query(
    `SELECT ${counts} FROM events WHERE ${inWindow}
       AND event_name NOT IN (${values.map((v) => `'${String(v.value)}'`).join(', ')})`,
  );
  return { totals, values, other };
}

it("answers late events in the whole hours of a window's partial days once they are absorbed", async () => {
  const s = sources();
  const before = await truth();
  expect(await answer(s)).toEqual(before);
  // New users in the whole hours of the first and last days, which are not whole days.
  await insertEvents(40, (n) => `${day0} + 7 * 3600 + ${n}`, `'late-' || n`);
  await insertEvents(40, (n) => `${day0} + 11 * ${day} + 3600 + ${n}`, `'later-' || n`);
  await refreshRollup(pool);
  const after = await truth();
  expect(after.totals).toMatchObject({ count: (before.totals as { count: number }).count + 80 });
  expect(await answer(s)).toEqual(after);
});
