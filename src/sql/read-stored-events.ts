// The rows a commit notification names, read once per process for its /live subscribers: by
// (project_id, idem_key), the events table's unique key, each as its export line.
import { exportLineSql } from './export-events.js';
import type { QueuedPool } from './queued-pool.js';

export interface StoredEvent {
  readonly eventName: string;
  readonly channel: string | null;
  /** The event as GET /events/export writes it, without the newline. */
  readonly line: string;
}

const readSql = `
SELECT event_name, channel, ${exportLineSql} AS line
FROM events
WHERE project_id = $1 AND idem_key = ANY($2::uuid[])
ORDER BY occurred_at, idem_key`;

export async function readStoredEvents(
  pool: QueuedPool,
  projectId: number,
  keys: readonly string[],
): Promise<StoredEvent[]> {
  const { rows } = await pool.query<{ event_name: string; channel: string | null; line: string }>({
    name: 'read-stored-events',
    text: readSql,
    values: [projectId, keys],
  });
  return rows.map((row) => ({ eventName: row.event_name, channel: row.channel, line: row.line }));
}
