// A sliver's absorbed rows are read once however many answers need them at the same moment: a
// second reader waits for the first one's rows instead of sending the same statement again.
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { defaultProjectId } from '../../src/sql/insert-events.js';
import { readAbsorbedRows, type Sliver } from '../../src/sql/read-slivers.js';
import { refreshRollup } from '../../src/sql/refresh-rollup.js';
import { createTestDatabase, servicePool, type TestDatabase } from '../helpers/database.js';
import { sleep, waitUntil } from '../helpers/wait-until.js';

/** 2023-11-15 UTC. */
const dayStart = 19_676 * 86_400;
const hour = dayStart / 3600;
const slivers: Sliver[] = [
  { from: dayStart + 1800, end: dayStart + 3600, hour },
  { from: dayStart + 3600 + 900, end: dayStart + 7200, hour: hour + 1 },
];

let db: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.query(
    `INSERT INTO events (idem_key, event_id, event_name, user_id, occurred_at)
     SELECT md5('s' || n)::uuid, n::text, 'view', 'user-' || (n % 37), to_timestamp($1 + (n * 7) % 7200)
     FROM generate_series(0, 1999) AS n`,
    [dayStart],
  );
  pool = servicePool(db.dsn, 'pulse-sliver-reads', 3);
  await refreshRollup(pool);
});

afterAll(async () => {
  await pool?.end();
  await db?.close();
});

const waitingReads = async () =>
  (
    await db.query(
      `SELECT 1 FROM pg_stat_activity
       WHERE wait_event_type = 'Lock' AND query LIKE '%array_agg(DISTINCT u.user_int)%'`,
    )
  ).length;

/** Rows by the sliver they belong to, not by its index in one request's list. */
const bySliver = (list: readonly Sliver[], rows: Awaited<ReturnType<typeof readAbsorbedRows>>) =>
  rows
    .map((r) => ({ ...r, key: `${list[r.key]!.from}-${list[r.key]!.end}` }))
    .sort((a, b) => a.key.localeCompare(b.key));

it('reads the slivers another answer is reading once, and gives both answers the same rows', async () => {
  const [{ snapshot }] = (await db.query<{ snapshot: string }>(
    'SELECT pg_current_snapshot()::text AS snapshot',
  )) as [{ snapshot: string }];
  const shared = [defaultProjectId, null, null, snapshot] as const;
  // Holding the user dictionary keeps the first read waiting while the second one arrives.
  const holder = new pg.Client({ connectionString: db.dsn });
  await holder.connect();
  const first = await pool.connect();
  const second = await pool.connect();
  try {
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE user_ids IN ACCESS EXCLUSIVE MODE');
    const firstRows = readAbsorbedRows(first, shared, 'NULL::text', slivers, [0, 1]);
    await waitUntil(
      'the first read to wait for the lock',
      async () => (await waitingReads()) === 1,
      {
        timeoutMs: 10_000,
      },
    );
    // The same slivers, listed the other way round.
    const reversed = [...slivers].reverse();
    const secondRows = readAbsorbedRows(second, shared, 'NULL::text', reversed, [0, 1]);
    // A second statement would be waiting for the lock well within this.
    await sleep(500);
    expect(await waitingReads()).toBe(1);
    await holder.query('COMMIT');
    const [a, b] = await Promise.all([firstRows, secondRows]);
    expect(a.reduce((sum, r) => sum + r.event_count, 0)).toBe(1228);
    expect(bySliver(reversed, b)).toEqual(bySliver(slivers, a));
  } finally {
    await holder.end();
    first.release();
    second.release();
  }
});

it('reads many slivers a few per statement, one statement at a time on its connection', async () => {
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(warning.message);
  process.on('warning', onWarning);
  // Forty quarter hours: three statements.
  const quarters: Sliver[] = Array.from({ length: 40 }, (_, i) => ({
    from: dayStart + i * 900,
    end: dayStart + (i + 1) * 900,
    hour: hour + Math.floor(i / 4),
  }));
  const [{ snapshot }] = (await db.query<{ snapshot: string }>(
    'SELECT pg_current_snapshot()::text AS snapshot',
  )) as [{ snapshot: string }];
  const client = await pool.connect();
  try {
    const rows = await readAbsorbedRows(
      client,
      [defaultProjectId, null, null, snapshot],
      'NULL::text',
      quarters,
      quarters.map((_, i) => i),
    );
    expect(rows.reduce((sum, r) => sum + r.event_count, 0)).toBe(2000);
    expect(new Set(rows.map((r) => r.key)).size).toBe(8);
  } finally {
    client.release();
    process.off('warning', onWarning);
  }
  expect(warnings.filter((w) => w.includes('already executing a query'))).toEqual([]);
});
