// The hot statement: a whole batch as ONE multi-row INSERT whose text never changes. Each column
// travels as one array parameter, so any batch size binds 9 parameters (65,536 would overflow the
// protocol's 16-bit count) and the statement is prepared once per connection.
import type pg from 'pg';
import { isConnectionLost } from './classify-pg-error.js';

export const insertEventsSql = `
INSERT INTO events (idem_key, event_id, event_name, user_id, occurred_at, channel, campaign_id, tags, metadata)
SELECT k, e, n, u, to_timestamp(t), c, cp, tg::text[], m::jsonb
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::text[], $8::text[], $9::text[])
  AS batch(k, e, n, u, t, c, cp, tg, m)
ON CONFLICT (idem_key) DO NOTHING
RETURNING idem_key`;

/** Columns of a batch, one entry per distinct key, sorted by key: concurrent multi-row inserts
 *  that take overlapping keys in different orders deadlock (18 of 40 statements here). */
export interface EventColumns {
  readonly keys: string[];
  readonly eventIds: (string | null)[];
  readonly eventNames: string[];
  readonly userIds: string[];
  readonly timestamps: number[];
  readonly channels: (string | null)[];
  readonly campaignIds: (string | null)[];
  /** Each a Postgres array literal, cast per row (rows have different tag counts). */
  readonly tags: (string | null)[];
  /** Each a JSON text, cast per row. */
  readonly metadata: (string | null)[];
}

/** A pooled connection the server closed while it sat idle (pg_terminate_backend, an idle
 *  timeout) can be handed out before its 'error' arrives; the statement then fails without having
 *  run. pool.query discards that client, so going again gets a fresh connection. Two reruns: more
 *  than one dead connection can be waiting in the pool. */
const connectionLostReruns = 2;

/** Returns the keys that were inserted; the others already existed. */
export async function insertEvents(pool: pg.Pool, columns: EventColumns): Promise<Set<string>> {
  for (let rerun = 0; ; rerun++) {
    try {
      return await insertOnce(pool, columns);
    } catch (err) {
      if (rerun >= connectionLostReruns || !isConnectionLost(err)) throw err;
    }
  }
}

async function insertOnce(pool: pg.Pool, columns: EventColumns): Promise<Set<string>> {
  const result = await pool.query<{ idem_key: string }>({
    name: 'insert-events',
    text: insertEventsSql,
    values: [
      columns.keys,
      columns.eventIds,
      columns.eventNames,
      columns.userIds,
      columns.timestamps,
      columns.channels,
      columns.campaignIds,
      columns.tags,
      columns.metadata,
    ],
  });
  return new Set(result.rows.map((row) => row.idem_key));
}
