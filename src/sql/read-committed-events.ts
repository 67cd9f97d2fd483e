// The rows /live sends, each as its export line: the rows a commit notification names, by
// (project_id, idem_key), the table's unique key; and, to catch up on notifications that never
// arrived, the rows of a project committed since a snapshot by transactions the reader has not
// seen. Those are found through the BRIN index on txid, as the rollup finds its new rows; OFFSET 0
// keeps the planner on it (given the project condition inside, a planner without fresh statistics
// read the project's whole history through the btree instead).
import { exportLineSql } from './export-events.js';
import { parseSnapshot, type Snapshot } from './pg-snapshot.js';
import type { QueuedPool } from './queued-pool.js';

export interface CommittedEvent {
  readonly eventName: string;
  readonly channel: string | null;
  /** The event as GET /events/export writes it, without the newline. */
  readonly line: string;
}

/** Which rows are wanted: null for all; else rows matching any (event_name, channel) pair, a
 *  null in a pair matching anything. */
export interface TopicFilters {
  readonly eventNames: readonly (string | null)[];
  readonly channels: readonly (string | null)[];
}

const byKeysSql = `
SELECT event_name, channel, ${exportLineSql} AS line
FROM events
WHERE project_id = $1 AND idem_key = ANY($2::uuid[])
ORDER BY occurred_at, idem_key`;

/** The rows of project $1 that `keys` name. */
export async function readEventsByKey(
  pool: QueuedPool,
  projectId: number,
  keys: readonly string[],
): Promise<CommittedEvent[]> {
  const { rows } = await pool.query<{ event_name: string; channel: string | null; line: string }>({
    name: 'read-events-by-key',
    text: byKeysSql,
    values: [projectId, keys],
  });
  return rows.map((row) => ({ eventName: row.event_name, channel: row.channel, line: row.line }));
}

/** The rows of project $1 committed after $2 and seen by $3, by none of the transactions $6,
 *  that the topics' filters $4 and $5 want. */
const unseenRows = `
  SELECT e.* FROM (
    SELECT e.* FROM events e
    WHERE e.txid >= pg_snapshot_xmin($2::pg_snapshot)::text::bigint
      AND NOT pg_visible_in_snapshot(e.txid::text::xid8, $2::pg_snapshot)
      AND pg_visible_in_snapshot(e.txid::text::xid8, $3::pg_snapshot)
    OFFSET 0
  ) e
  WHERE e.project_id = $1 AND e.txid <> ALL($6::int8[])
    AND ($4::text[] IS NULL OR EXISTS (
      SELECT 1 FROM unnest($4::text[], $5::text[]) AS f(event_name, channel)
      WHERE (f.event_name IS NULL OR f.event_name = e.event_name)
        AND (f.channel IS NULL OR f.channel = e.channel)))`;

// In commit order; a transaction's rows as the export orders them.
const unseenSql = `
SELECT e.event_name, e.channel, ${exportLineSql} AS line
FROM (${unseenRows}) e
ORDER BY e.txid, e.occurred_at, e.idem_key
LIMIT $7`;

const countUnseenSql = `
SELECT e.event_name, e.channel, count(*)::int AS events
FROM (${unseenRows}) e
GROUP BY 1, 2`;

const snapshotSql = 'SELECT pg_current_snapshot()::text AS snapshot';

/** Now, for a reader: what it has seen by then is behind it. */
export async function currentSnapshot(pool: QueuedPool): Promise<Snapshot> {
  const { rows } = await pool.query<{ snapshot: string }>({ text: snapshotSql });
  return parseSnapshot(rows[0]!.snapshot);
}

/** Where a catch-up looks. */
export interface UnseenRows {
  readonly projectId: number;
  /** Rows committed after `since`, seen by `until`. */
  readonly since: Snapshot;
  readonly until: Snapshot;
  /** Transactions whose rows the reader took from their notifications. */
  readonly seen: readonly number[];
  readonly filters: TopicFilters | null;
}

// Unnamed statements: planned with the values bound, so the `<> ALL` of seen transactions is a
// hashed lookup (a generic plan would test each row against every entry of the array).
const parameters = (where: UnseenRows) => [
  where.projectId,
  where.since.text,
  where.until.text,
  where.filters?.eventNames ?? null,
  where.filters?.channels ?? null,
  where.seen,
];

/** The first `limit` unseen rows, in commit order. */
export async function readUnseenEvents(
  pool: QueuedPool,
  where: UnseenRows,
  limit: number,
): Promise<CommittedEvent[]> {
  const { rows } = await pool.query<{ event_name: string; channel: string | null; line: string }>({
    text: unseenSql,
    values: [...parameters(where), limit],
  });
  return rows.map((row) => ({ eventName: row.event_name, channel: row.channel, line: row.line }));
}

// One scan of the rows new since the oldest range's start, each range's own bounds applied per row.
// NOT IN a subquery (no NULL on either side) is a hashed lookup in the seen transactions; an
// anti-join was planned the other way round, hashing every new row.
const countByProjectSql = `
WITH r AS MATERIALIZED (
  SELECT project_id, since::pg_snapshot AS since, until::pg_snapshot AS until
  FROM unnest($1::int4[], $2::text[], $3::text[]) AS r(project_id, since, until)
), seen AS MATERIALIZED (
  SELECT * FROM unnest($4::int4[], $5::int8[]) AS s(project_id, txid)
)
SELECT e.project_id, count(*)::int AS events
FROM (SELECT e.project_id, e.txid FROM events e WHERE e.txid >= $6::int8 AND e.txid < $7::int8 OFFSET 0) e
JOIN r ON r.project_id = e.project_id
WHERE NOT pg_visible_in_snapshot(e.txid::text::xid8, r.since)
  AND pg_visible_in_snapshot(e.txid::text::xid8, r.until)
  AND (e.project_id, e.txid) NOT IN (SELECT project_id, txid FROM seen)
GROUP BY 1`;

/** Which projects have unseen rows in their range, whatever their filters. */
export async function countUnseenByProject(
  pool: QueuedPool,
  ranges: readonly Omit<UnseenRows, 'filters'>[],
): Promise<Set<number>> {
  if (ranges.length === 0) return new Set();
  const seenProjects: number[] = [];
  const seenTxids: number[] = [];
  for (const { projectId, seen } of ranges)
    for (const txid of seen) {
      seenProjects.push(projectId);
      seenTxids.push(txid);
    }
  // No range holds a row before the oldest since's xmin, or from the newest until's xmax on.
  const from = Math.min(...ranges.map((r) => r.since.xmin));
  const to = Math.max(...ranges.map((r) => r.until.xmax));
  const { rows } = await pool.query<{ project_id: number }>({
    text: countByProjectSql,
    values: [
      ranges.map((r) => r.projectId),
      ranges.map((r) => r.since.text),
      ranges.map((r) => r.until.text),
      seenProjects,
      seenTxids,
      from,
      to,
    ],
  });
  return new Set(rows.map((row) => row.project_id));
}

export interface EventCount {
  readonly eventName: string;
  readonly channel: string | null;
  readonly events: number;
}

/** How many unseen rows there are, by event name and channel: what a catch-up that stopped at
 *  its limit left out. */
export async function countUnseenEvents(
  pool: QueuedPool,
  where: UnseenRows,
): Promise<EventCount[]> {
  const { rows } = await pool.query<{ event_name: string; channel: string | null; events: number }>(
    { text: countUnseenSql, values: parameters(where) },
  );
  return rows.map((row) => ({
    eventName: row.event_name,
    channel: row.channel,
    events: row.events,
  }));
}
