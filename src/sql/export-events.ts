// Raw export: stored events in occurred_at order, one JSON text per row built by Postgres, read
// through a cursor so memory stays flat whatever the window holds.
import type pg from 'pg';
import Cursor from 'pg-cursor';
import type { MetricsWindow } from './read-metrics.js';

// Absent optional fields are left out, as they were sent; nulls inside metadata are data and stay.
const optional = (field: string) =>
  `|| CASE WHEN ${field} IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('${field}', ${field}) END`;
const exportSql = `
SELECT (jsonb_build_object(
  'event_name', event_name, 'user_id', user_id, 'timestamp', extract(epoch FROM occurred_at)::int8,
  'received_at', (extract(epoch FROM received_at) * 1000)::int8)
  ${['event_id', 'channel', 'campaign_id', 'tags', 'metadata'].map(optional).join('\n  ')})::text AS line
FROM events
WHERE occurred_at >= to_timestamp($1) AND occurred_at < to_timestamp($2)
  AND ($3::text IS NULL OR event_name = $3) AND ($4::text IS NULL OR channel = $4)
ORDER BY occurred_at, idem_key`;

export interface EventExport {
  /** Up to `rows` NDJSON lines (each ending in \n); empty when done. */
  read(rows: number): Promise<string>;
  close(): Promise<void>;
}

export async function openEventExport(pool: pg.Pool, window: MetricsWindow): Promise<EventExport> {
  const client = await pool.connect();
  let failure: Error | undefined;
  // A checked-out client has no pool listener: without this, a connection that dies mid-export
  // (pg_terminate_backend, a restart) is an unhandled 'error' event that kills the process.
  const onConnectionError = (err: Error) => {
    failure ??= err;
  };
  client.on('error', onConnectionError);
  try {
    // The statement timeout keeps running while the cursor waits for a slow reader, so an export
    // of millions of rows would be cut at PG_STATEMENT_TIMEOUT_MS; the HTTP layer's stall
    // deadline (EXPORT_STALL_TIMEOUT_MS) bounds a reader that stops instead.
    await client.query(
      'BEGIN READ ONLY; SET LOCAL statement_timeout = 0; SET LOCAL idle_in_transaction_session_timeout = 0',
    );
  } catch (err) {
    client.removeListener('error', onConnectionError);
    client.release(err as Error);
    throw err;
  }
  const cursor = new Cursor<{ line: string }>(exportSql, [
    window.from,
    window.to + 1,
    window.eventName,
    window.channel,
  ]);
  // pg's client-side query_timeout runs from the first read to the cursor's end, so it would cut
  // every export longer than PG_QUERY_TIMEOUT_MS; pg reads a per-query override from the query
  // object. The longest setTimeout Node accepts stands for "none" (the stall deadline governs).
  Object.assign(cursor, { query_timeout: 2_147_483_647 });
  client.query(cursor);
  let closed = false;
  return {
    read: async (rows) => {
      try {
        const batch = await cursor.read(rows);
        let text = '';
        for (const row of batch) text += `${row.line}\n`;
        return text;
      } catch (err) {
        failure = err as Error;
        throw err;
      }
    },
    close: async () => {
      if (closed) return;
      closed = true;
      // After an error pg-cursor's close() sends Close without Sync and waits for a ReadyForQuery
      // that never comes, holding the connection forever: destroy the connection instead.
      if (failure !== undefined) {
        client.release(failure);
        return;
      }
      await cursor.close().catch((err: Error) => (failure ??= err));
      if (failure === undefined)
        await client.query('COMMIT').catch((err: Error) => (failure ??= err));
      client.removeListener('error', onConnectionError);
      client.release(failure);
    },
  };
}
