// Raw export: stored events in occurred_at order, one JSON text per row built by Postgres, read
// through a cursor so memory stays flat whatever the window holds.
import type pg from 'pg';
import { checkOutClient } from './create-pool.js';
import { eventColumns } from './event-columns.js';
import type { MetricsWindow } from './read-metrics.js';

// Absent optional fields are left out, as they were sent; nulls inside metadata are data and stay.
const required = eventColumns.filter((c) => !c.optional).map((c) => `'${c.field}', ${c.toJson}`);
const optional = eventColumns
  .filter((c) => c.optional)
  .map(
    (c) =>
      `|| CASE WHEN ${c.column} IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('${c.field}', ${c.toJson}) END`,
  );
/** One stored event as one export line (JSON text, no newline): /live sends the same. */
export const exportLineSql = `(jsonb_build_object(
  ${required.join(', ')},
  'received_at', (extract(epoch FROM received_at) * 1000)::int8)
  ${optional.join('\n  ')})::text`;
const declareSql = `
DECLARE export_events NO SCROLL CURSOR FOR
SELECT ${exportLineSql} AS line
FROM events
WHERE project_id = $5 AND occurred_at >= to_timestamp($1) AND occurred_at < to_timestamp($2)
  AND ($3::text IS NULL OR event_name = $3) AND ($4::text IS NULL OR channel = $4)
ORDER BY occurred_at, idem_key`;

export interface EventExport {
  /** Up to `rows` NDJSON lines (each ending in \n); empty when done. */
  read(rows: number): Promise<string>;
  close(): Promise<void>;
}

export interface ExportTimeouts {
  /** Server-side limit on one read (statement_timeout of each FETCH). */
  readonly readMs: number;
  /** Client-side backstop on one read; above readMs, so the server's fires first. */
  readonly readBackstopMs: number;
  /** idle_in_transaction_session_timeout: the longest gap between two reads. */
  readonly idleMs: number;
}

// A SQL cursor rather than a protocol-level one (pg-cursor): each FETCH is a statement of its own,
// so statement_timeout bounds one read and, between reads, the session is idle in transaction, where
// idle_in_transaction_session_timeout frees it even if this process stops serving the export. A
// protocol-level portal is never idle (no Sync until it closes) and its statement timer runs from
// the first read to the last.
/** One project's events in the window. */
export async function openEventExport(
  pool: pg.Pool,
  projectId: number,
  window: MetricsWindow,
  timeouts: ExportTimeouts,
): Promise<EventExport> {
  const session = await checkOutClient(pool);
  // pg reads a per-query query_timeout that its types do not declare; the pool's default is sized
  // for /metrics, below the read timeout here.
  const run = (text: string, values?: unknown[]) =>
    session.client.query<{ line: string }>({
      text,
      values,
      query_timeout: timeouts.readBackstopMs,
    } as pg.QueryConfig);
  try {
    await run('BEGIN READ ONLY');
    await run(
      `SELECT set_config('statement_timeout', $1, true),
              set_config('idle_in_transaction_session_timeout', $2, true)`,
      [String(timeouts.readMs), String(timeouts.idleMs)],
    );
    await run(declareSql, [
      window.from,
      window.to + 1,
      window.eventName,
      window.channel,
      projectId,
    ]);
  } catch (err) {
    session.release(err as Error);
    throw err;
  }
  let closed = false;
  return {
    read: async (rows) => {
      try {
        // FETCH takes no parameters; rows is an integer from the config.
        const { rows: batch } = await run(`FETCH FORWARD ${Math.trunc(rows)} FROM export_events`);
        let text = '';
        for (const row of batch) text += `${row.line}\n`;
        return text;
      } catch (err) {
        session.fail(err as Error);
        throw err;
      }
    },
    close: async () => {
      if (closed) return;
      closed = true;
      // COMMIT closes the cursor.
      if (session.failure() === undefined)
        await run('COMMIT').catch((err: Error) => session.fail(err));
      session.release();
    },
  };
}
