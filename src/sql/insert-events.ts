// The hot statement: a whole batch as ONE multi-row INSERT whose text never changes. Each column
// travels as one array parameter, so any batch size binds one parameter per column (one per row
// would overflow the protocol's 16-bit count at 65,536) and the statement is prepared once per
// connection.
import { hash } from 'node:crypto';
import type pg from 'pg';
import { keysInArrivalOrder } from '../faults/fault-injection.js';
import type { IncomingEvent } from '../validation/validate-events.js';
import { isConnectionLost } from './classify-pg-error.js';
import { eventColumns } from './event-columns.js';

const columnNames = eventColumns.map((c) => c.column);
export const insertEventsSql = `
INSERT INTO events (idem_key, ${columnNames.join(', ')})
SELECT idem_key, ${eventColumns.map((c) => c.fromElement(c.column)).join(', ')}
FROM unnest($1::uuid[], ${eventColumns.map((c, i) => `$${i + 2}::${c.arrayType}`).join(', ')})
  AS batch(idem_key, ${columnNames.join(', ')})
ON CONFLICT (idem_key) DO NOTHING
RETURNING idem_key`;

/** What the statement did with each event: stored it, or found its key already stored (before,
 *  or by an earlier event of the same batch). */
export const InsertOutcome = { duplicate: 0, inserted: 1 } as const;

/** A batch ready to send, built once and sent again as it is when the statement is retried. */
export interface EventRows {
  /** Each event's idempotency key, in the order given. */
  readonly keys: readonly string[];
  /** The statement's parameters: the keys, then one array per column of eventColumns, with one
   *  entry per distinct key, sorted by key: concurrent multi-row inserts that take overlapping
   *  keys in different orders deadlock. */
  readonly params: unknown[][];
}

export interface InsertedEvents {
  /** One InsertOutcome per event, in the order given. */
  readonly outcomes: Uint8Array;
  readonly inserted: number;
}

/** md5 of the key material as a uuid. The separators are U+0000, which validation forbids in
 *  values, and the i/c prefix keeps an event_id from ever colliding with a composite key. */
export function idempotencyKey(event: IncomingEvent): string {
  const material =
    event.event_id !== undefined
      ? `i${event.event_id}`
      : `c${event.event_name}\u0000${event.user_id}\u0000${event.timestamp}`;
  const hex = hash('md5', material, 'hex'); // one-shot: no Hash object per event
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Events [from, to) as the statement's rows. */
export function toEventRows(
  events: readonly IncomingEvent[],
  from = 0,
  to = events.length,
): EventRows {
  const keys: string[] = [];
  const firstIndexByKey = new Map<string, number>();
  for (let i = from; i < to; i++) {
    const key = idempotencyKey(events[i]!);
    keys.push(key);
    if (!firstIndexByKey.has(key)) firstIndexByKey.set(key, i);
  }
  const firstSeen = [...firstIndexByKey.entries()];
  if (!keysInArrivalOrder()) firstSeen.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  // Column by column: each array is built at its final size.
  const params: unknown[][] = [firstSeen.map(([key]) => key)];
  for (const { element } of eventColumns)
    params.push(firstSeen.map(([, i]) => element(events[i]!)));
  return { keys, params };
}

/** Stores the events whose keys are new. */
export function insertEvents(
  pool: pg.Pool,
  events: readonly IncomingEvent[],
): Promise<InsertedEvents> {
  return insertEventRows(pool, toEventRows(events));
}

/** A pooled connection the server closed while it sat idle (pg_terminate_backend, an idle
 *  timeout) can be handed out before its 'error' arrives; the statement then fails without having
 *  run. pool.query discards that client, so going again gets a fresh connection. Two reruns: more
 *  than one dead connection can be waiting in the pool. */
const connectionLostReruns = 2;

export async function insertEventRows(pool: pg.Pool, rows: EventRows): Promise<InsertedEvents> {
  for (let rerun = 0; ; rerun++) {
    try {
      return await insertOnce(pool, rows);
    } catch (err) {
      if (rerun >= connectionLostReruns || !isConnectionLost(err)) throw err;
    }
  }
}

async function insertOnce(pool: pg.Pool, rows: EventRows): Promise<InsertedEvents> {
  const result = await pool.query<{ idem_key: string }>({
    name: 'insert-events',
    text: insertEventsSql,
    values: rows.params,
  });
  const insertedKeys = new Set(result.rows.map((row) => row.idem_key));
  const inserted = insertedKeys.size;
  // The first event with an inserted key is the insert; any later one in the batch is its duplicate.
  const outcomes = new Uint8Array(rows.keys.length);
  for (let i = 0; i < outcomes.length; i++)
    if (insertedKeys.delete(rows.keys[i]!)) outcomes[i] = InsertOutcome.inserted;
  return { outcomes, inserted };
}
