// The rollup never misses or double counts an event that commits while a refresh runs: writers
// hammer the same few days over HTTP while two independent refreshers loop, then every rollup cell
// must equal the raw table, bit for bit. Plus the classic race made deterministic (a writer still
// uncommitted when the refresher takes its snapshot) and the advisory lock.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeUserSet, orUserSetInto } from '../../src/sql/user-set-format.js';
import { createPool } from '../../src/sql/create-pool.js';
import { refreshRollup, rollupLockId } from '../../src/sql/refresh-rollup.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { postJson } from '../helpers/events.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const secondsPerDay = 86_400;
const firstDay = 19_700;
const hammeredDays = 3;

let db: TestDatabase;
let server: TestServer;
/** A second refresher, as another server process would run it. */
let otherPool: pg.Pool;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.dsn, {
    ROLLUP_REFRESH_MS: '3600000',
    METRICS_CACHE_TTL_MS: '0',
    RATE_LIMIT_METRICS_PER_MIN: '0',
    INGEST_WORKERS: '2',
    // Small batches: many transactions committing while the refreshers take their snapshots.
    BATCH_MAX_WAIT_MS: '1',
  });
  otherPool = createPool(
    {
      connectionString: db.dsn,
      applicationName: 'pulse-test-refresher',
      max: 2,
      connectTimeoutMs: 5000,
      statementTimeoutMs: 30_000,
      queryTimeoutMs: 60_000,
    },
    pino({ level: 'silent' }),
  );
});
afterAll(async () => {
  await server?.stop();
  await otherPool?.end();
  await db?.close();
});

type CellKey = string;
interface CellValue {
  count: number;
  users: string[];
}

/** Every rollup cell, day and hour, its users decoded back to user ids through the user_ids
 *  dictionary. Keys: span|grain|day or hour|event_name|channel. */
async function rollupCells(): Promise<Map<CellKey, CellValue>> {
  const dictionary = new Map(
    (
      await db.query<{ user_id: string; user_int: number }>(
        'SELECT user_id, user_int FROM user_ids',
      )
    ).map((r) => [r.user_int, r.user_id]),
  );
  const rows = await db.query<{
    span: string;
    grain: number;
    start: number;
    event_name: string;
    channel: string;
    event_count: string;
    users: Buffer;
  }>(`SELECT 'day' AS span, grain, day AS start, event_name, channel, event_count, users FROM rollup_cells
      UNION ALL
      SELECT 'hour', grain, hour, event_name, channel, event_count, users FROM rollup_hour_cells`);
  const cells = new Map<CellKey, CellValue>();
  for (const r of rows) {
    const bitmap = orUserSetInto(new Uint8Array(0), decodeUserSet(r.users));
    const users: string[] = [];
    for (let i = 0; i < bitmap.length * 8; i++) {
      if ((bitmap[i >>> 3]! & (1 << (i & 7))) !== 0) users.push(dictionary.get(i) ?? `#${i}?`);
    }
    cells.set(`${r.span}|${r.grain}|${r.start}|${r.event_name}|${r.channel}`, {
      count: Number(r.event_count),
      users: users.sort(),
    });
  }
  return cells;
}

/** What every cell must hold, computed from the raw table (grains as in 0002_daily_rollup.sql, and
 *  4 and 5 for events with no channel, 0007_cells_without_channel.sql). */
async function rawCells(): Promise<Map<CellKey, CellValue>> {
  const rows = await db.query<{
    span: string;
    grain: number;
    start: number;
    event_name: string;
    channel: string;
    count: number;
    users: string[];
  }>(`
    WITH e AS (
      SELECT 'day' AS span, floor(extract(epoch FROM occurred_at) / 86400)::int AS start,
             event_name, channel, user_id
      FROM events
      UNION ALL
      SELECT 'hour', floor(extract(epoch FROM occurred_at) / 3600)::int, event_name, channel, user_id
      FROM events
    ), cells AS (
      SELECT span, 0 AS grain, start, '' AS event_name, '' AS channel, user_id FROM e
      UNION ALL SELECT span, 1, start, event_name, '', user_id FROM e
      UNION ALL SELECT span, 2, start, '', channel, user_id FROM e WHERE channel IS NOT NULL
      UNION ALL SELECT span, 3, start, event_name, channel, user_id FROM e WHERE channel IS NOT NULL
      UNION ALL SELECT span, 4, start, '', '', user_id FROM e WHERE channel IS NULL
      UNION ALL SELECT span, 5, start, event_name, '', user_id FROM e WHERE channel IS NULL
    )
    SELECT span, grain, start, event_name, channel, count(*)::int AS count,
           array_agg(DISTINCT user_id ORDER BY user_id) AS users
    FROM cells GROUP BY 1, 2, 3, 4, 5`);
  const cells = new Map<CellKey, CellValue>();
  for (const r of rows) {
    // JS sort, like rollupCells: the database collation may order differently.
    cells.set(`${r.span}|${r.grain}|${r.start}|${r.event_name}|${r.channel}`, {
      count: r.count,
      users: [...r.users].sort(),
    });
  }
  return cells;
}

function sorted(cells: Map<CellKey, CellValue>): [CellKey, CellValue][] {
  return [...cells.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

let eventCounter = 0;
function hammerEvent(client: number) {
  const n = eventCounter++;
  const event: Record<string, unknown> = {
    event_id: randomUUID(),
    event_name: ['open', 'close'][n % 2],
    user_id: `user-${(n * 7 + client) % 37}`,
    timestamp: (firstDay + (n % hammeredDays)) * secondsPerDay + ((n * 977) % secondsPerDay),
  };
  if (n % 5 !== 0) event.channel = ['web', 'ios', 'android'][n % 3];
  return event;
}

describe('rollup refresh under concurrent writes', () => {
  it('ends with every rollup cell equal to the raw table after writers and two refreshers race', async () => {
    const clients = 6;
    const requestsPerClient = 25;
    let writing = true;
    const writers = Array.from({ length: clients }, async (_, client) => {
      for (let i = 0; i < requestsPerClient; i++) {
        const events = Array.from({ length: 1 + ((i * 3 + client) % 20) }, () =>
          hammerEvent(client),
        );
        const res = await postJson(`${server.url}/events/bulk`, { events });
        if (res.status !== 202) throw new Error(`bulk ${res.status}: ${JSON.stringify(res.body)}`);
      }
    });
    let serviceRuns = 0;
    let otherRuns = 0;
    const serviceLoop = (async () => {
      // Bounded: writers finish long before this many rounds.
      for (let i = 0; i < 10_000 && writing; i++) {
        await server.service.refresher.refreshNow();
        serviceRuns++;
      }
    })();
    const otherLoop = (async () => {
      for (let i = 0; i < 10_000 && writing; i++) {
        const result = await refreshRollup(otherPool);
        if (result.ran) otherRuns++;
      }
    })();
    try {
      await Promise.all(writers);
    } finally {
      writing = false;
      await Promise.all([serviceLoop, otherLoop]);
    }
    expect(await refreshRollup(otherPool)).toMatchObject({ ran: true });

    const [stored] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
    expect(stored!.n).toBe(eventCounter);
    expect(serviceRuns + otherRuns).toBeGreaterThan(1);
    expect(sorted(await rollupCells())).toEqual(sorted(await rawCells()));
  });

  it('answers day-aligned /metrics windows from the rollup equal to the raw table', async () => {
    await server.service.refresher.refreshNow();
    const from = firstDay * secondsPerDay;
    const to = (firstDay + hammeredDays) * secondsPerDay - 1;
    for (const filter of [
      '',
      '&event_name=open',
      '&channel=web',
      '&event_name=close&channel=ios',
    ]) {
      const res = await fetch(`${server.url}/metrics?from=${from}&to=${to}&group_by=day${filter}`);
      const body = (await res.json()) as { totals: unknown; buckets: unknown };
      const params = new URLSearchParams(filter);
      const values = [from, to, params.get('event_name'), params.get('channel')];
      const where = `occurred_at BETWEEN to_timestamp($1) AND to_timestamp($2)
        AND ($3::text IS NULL OR event_name = $3) AND ($4::text IS NULL OR channel = $4)`;
      const [totals] = await db.query(
        `SELECT count(*)::int AS count, count(DISTINCT user_id)::int AS unique_users FROM events WHERE ${where}`,
        values,
      );
      const buckets = await db.query(
        `SELECT floor(extract(epoch FROM occurred_at) / 86400)::int * 86400 AS bucket_start,
                count(*)::int AS count, count(DISTINCT user_id)::int AS unique_users
         FROM events WHERE ${where} GROUP BY 1 ORDER BY 1`,
        values,
      );
      expect({ status: res.status, totals: body.totals, buckets: body.buckets }).toEqual({
        status: 200,
        totals,
        buckets,
      });
    }
  });

  it('absorbs a row whose writer was still uncommitted at the snapshot exactly once, in the next refresh', async () => {
    await refreshRollup(otherPool);
    const day = firstDay + 20;
    const writer = new pg.Client({ connectionString: db.dsn });
    await writer.connect();
    try {
      await writer.query('BEGIN');
      await writer.query(
        `INSERT INTO events (idem_key, event_name, user_id, occurred_at, channel)
         VALUES (gen_random_uuid(), 'race', 'racer', to_timestamp($1), 'web')`,
        [day * secondsPerDay + 60],
      );
      // A writer that committed after the one above began, before the snapshot.
      await db.query(
        `INSERT INTO events (idem_key, event_name, user_id, occurred_at, channel)
         VALUES (gen_random_uuid(), 'race', 'early', to_timestamp($1), 'web')`,
        [day * secondsPerDay + 120],
      );
      expect(await refreshRollup(otherPool)).toMatchObject({ ran: true, rows: 1, cells: 4 });
      await writer.query('COMMIT');
    } finally {
      await writer.end();
    }
    expect(await refreshRollup(otherPool)).toMatchObject({ ran: true, rows: 1, cells: 4 });
    expect(await refreshRollup(otherPool)).toMatchObject({ ran: true, rows: 0, cells: 0 });
    const cell = (await rollupCells()).get(`day|3|${day}|race|web`);
    expect(cell).toEqual({ count: 2, users: ['early', 'racer'] });
    expect(sorted(await rollupCells())).toEqual(sorted(await rawCells()));
  });

  it('never absorbs a row whose writer rolled back', async () => {
    const day = firstDay + 21;
    const writer = new pg.Client({ connectionString: db.dsn });
    await writer.connect();
    try {
      await writer.query('BEGIN');
      await writer.query(
        `INSERT INTO events (idem_key, event_name, user_id, occurred_at)
         VALUES (gen_random_uuid(), 'ghost', 'ghost-user', to_timestamp($1))`,
        [day * secondsPerDay],
      );
      await refreshRollup(otherPool);
      await writer.query('ROLLBACK');
    } finally {
      await writer.end();
    }
    expect(await refreshRollup(otherPool)).toMatchObject({ ran: true, rows: 0, cells: 0 });
    expect([...(await rollupCells()).keys()].filter((k) => k.includes('ghost'))).toEqual([]);
  });

  it('skips ({ran: false}) while another session holds the rollup advisory lock, and runs after', async () => {
    const holder = new pg.Client({ connectionString: db.dsn });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [rollupLockId]);
      await db.query(
        `INSERT INTO events (idem_key, event_name, user_id, occurred_at)
         VALUES (gen_random_uuid(), 'locked-out', 'lock-user', to_timestamp($1))`,
        [(firstDay + 22) * secondsPerDay],
      );
      expect(await refreshRollup(otherPool)).toMatchObject({ ran: false });
      expect(await refreshRollup(otherPool)).toMatchObject({ ran: false });
      // The service's refresher skips as well, and leaves the rollup untouched.
      await server.service.refresher.refreshNow();
      const [state] = await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM rollup_cells WHERE event_name = 'locked-out'",
      );
      expect(state!.n).toBe(0);
      await holder.query('SELECT pg_advisory_unlock($1)', [rollupLockId]);
    } finally {
      await holder.end();
    }
    // An event with no channel: day cells of grains 0, 1 (all, by name) and 4, 5 (no channel).
    expect(await refreshRollup(otherPool)).toMatchObject({ ran: true, rows: 1, cells: 4 });
  });

  it('releases the advisory lock after each refresh, so refreshes from different pools alternate', async () => {
    const results = [];
    for (let i = 0; i < 4; i++) {
      results.push((await refreshRollup(otherPool)).ran);
      await server.service.refresher.refreshNow();
    }
    expect(results).toEqual([true, true, true, true]);
    const [locks] = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks
       WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    );
    expect(locks!.n).toBe(0);
  });

  it('leaves no BRIN range of the tail index unsummarized after a refresh (readers scan those whole)', async () => {
    await db.query(
      `INSERT INTO events (idem_key, event_name, user_id, occurred_at)
       SELECT gen_random_uuid(), 'brin', 'brin-user-' || g, to_timestamp($1 + g)
       FROM generate_series(1, 20000) g`,
      [(firstDay + 23) * secondsPerDay],
    );
    const result = await refreshRollup(otherPool);
    expect(result).toMatchObject({ ran: true, rows: 20_000 });
    expect(result).not.toHaveProperty('summarizeError');
    // Counts the ranges it had to summarize now: none left by the refresh.
    const [left] = await db.query<{ n: number }>(
      `SELECT brin_summarize_new_values('events_txid_brin')::int AS n`,
    );
    expect(left!.n).toBe(0);
  });
});
