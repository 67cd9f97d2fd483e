// One incremental refresh of the daily rollup. Absorbs exactly the rows committed since the
// previous refresh's snapshot (see migrations/0002_daily_rollup.sql), so its cost follows what
// changed, never the size of the table.
import type pg from 'pg';
import { bitmapWith, trimmed } from '../metrics/user-bitmap.js';
import { withClient } from './create-pool.js';

/** Rows visible in the current (REPEATABLE READ) snapshot but not in $1, the previous one. */
const newRows = `events.txid >= pg_snapshot_xmin($1::pg_snapshot)::text::bigint
  AND NOT pg_visible_in_snapshot(events.txid::text::xid8, $1::pg_snapshot)`;

const lockSql = 'SELECT pg_try_advisory_lock($1) AS locked';
const unlockSql = 'SELECT pg_advisory_unlock($1)';
const readStateSql =
  'SELECT snapshot::text AS previous, pg_current_snapshot()::text AS current FROM rollup_state';

const registerUsersSql = `
INSERT INTO user_ids (user_id)
SELECT DISTINCT user_id FROM events WHERE ${newRows} ORDER BY user_id
ON CONFLICT (user_id) DO NOTHING`;

const aggregateNewRowsSql = `
SELECT floor(extract(epoch FROM events.occurred_at) / 86400)::int AS day,
       events.event_name, events.channel, count(*)::int AS event_count,
       array_agg(DISTINCT user_ids.user_int) AS user_ints
FROM events JOIN user_ids USING (user_id)
WHERE ${newRows}
GROUP BY 1, 2, 3`;

const readCellsSql = `
SELECT c.grain, c.day, c.event_name, c.channel, c.event_count::int AS event_count, c.users
FROM rollup_cells c
JOIN unnest($1::int2[], $2::int4[], $3::text[], $4::text[]) AS k(grain, day, event_name, channel)
  USING (grain, day, event_name, channel)`;

const writeCellsSql = `
INSERT INTO rollup_cells (grain, day, event_name, channel, event_count, users)
SELECT * FROM unnest($1::int2[], $2::int4[], $3::text[], $4::text[], $5::int8[], $6::bytea[])
ON CONFLICT (grain, event_name, channel, day)
DO UPDATE SET event_count = EXCLUDED.event_count, users = EXCLUDED.users`;

const lastRefreshSql =
  'SELECT (extract(epoch FROM refreshed_at) * 1000)::int8 AS ms FROM rollup_state';
const writeStateSql = 'UPDATE rollup_state SET snapshot = $1::pg_snapshot, refreshed_at = now()';

/** Shared by every process on the database: one refresher at a time ("rollup" in ASCII). */
export const rollupLockId = 0x726f6c6c7570;

export type RefreshResult =
  /** Another process holds the lock; refreshedAtMs is when the rollup last moved (any process). */
  | { readonly ran: false; readonly refreshedAtMs: number }
  | {
      readonly ran: true;
      readonly rows: number;
      readonly cells: number;
      readonly refreshedAtMs: number;
    };

interface Cell {
  grain: number;
  day: number;
  eventName: string;
  channel: string;
  eventCount: number;
  users: Uint8Array | null;
  newUserInts: number[];
}

export function refreshRollup(pool: pg.Pool): Promise<RefreshResult> {
  return withClient(pool, async (client) => {
    const { rows: lock } = await client.query<{ locked: boolean }>(lockSql, [rollupLockId]);
    if (!lock[0]?.locked) {
      const { rows } = await client.query<{ ms: string }>(lastRefreshSql);
      return { ran: false, refreshedAtMs: Number(rows[0]!.ms) };
    }
    try {
      // The lock is taken before the snapshot: a refresh that started after another committed
      // always sees that one's rollup_state.
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      const { rows: state } = await client.query<{ previous: string; current: string }>(
        readStateSql,
      );
      const { previous, current } = state[0]!;
      await client.query(registerUsersSql, [previous]);
      const { rows: groups } = await client.query<{
        day: number;
        event_name: string;
        channel: string | null;
        event_count: number;
        user_ints: number[];
      }>(aggregateNewRowsSql, [previous]);

      const cells = new Map<string, Cell>();
      const touch = (
        grain: number,
        day: number,
        eventName: string,
        channel: string,
        count: number,
        users: number[],
      ) => {
        const key = `${grain}\u0000${day}\u0000${eventName}\u0000${channel}`;
        let cell = cells.get(key);
        if (!cell) {
          cell = { grain, day, eventName, channel, eventCount: 0, users: null, newUserInts: [] };
          cells.set(key, cell);
        }
        cell.eventCount += count;
        for (const u of users) cell.newUserInts.push(u);
      };
      for (const g of groups) {
        touch(0, g.day, '', '', g.event_count, g.user_ints);
        touch(1, g.day, g.event_name, '', g.event_count, g.user_ints);
        if (g.channel !== null) {
          touch(2, g.day, '', g.channel, g.event_count, g.user_ints);
          touch(3, g.day, g.event_name, g.channel, g.event_count, g.user_ints);
        }
      }
      const list = [...cells.values()];
      if (list.length > 0) {
        const { rows: existing } = await client.query<{
          grain: number;
          day: number;
          event_name: string;
          channel: string;
          event_count: number;
          users: Buffer;
        }>(readCellsSql, [
          list.map((c) => c.grain),
          list.map((c) => c.day),
          list.map((c) => c.eventName),
          list.map((c) => c.channel),
        ]);
        for (const row of existing) {
          const cell = cells.get(
            `${row.grain}\u0000${row.day}\u0000${row.event_name}\u0000${row.channel}`,
          )!;
          cell.eventCount += row.event_count;
          cell.users = new Uint8Array(row.users); // a copy: bitmapWith grows it in place
        }
        await client.query(writeCellsSql, [
          list.map((c) => c.grain),
          list.map((c) => c.day),
          list.map((c) => c.eventName),
          list.map((c) => c.channel),
          list.map((c) => c.eventCount),
          list.map((c) => Buffer.from(trimmed(bitmapWith(c.users, c.newUserInts)))),
        ]);
      }
      await client.query(writeStateSql, [current]);
      await client.query('COMMIT');
      return {
        ran: true,
        rows: groups.reduce((n, g) => n + g.event_count, 0),
        cells: list.length,
        refreshedAtMs: Date.now(),
      };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      await client.query(unlockSql, [rollupLockId]).catch(() => undefined);
    }
  });
}
