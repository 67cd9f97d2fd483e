// Everything GET /metrics needs, read in ONE snapshot: rollup cells (whole UTC days and hours), the
// rows of hour slivers the cells already hold (where a local bucket begins off the hour), the raw
// edges of the window, and every row the rollup has not absorbed yet. Reading them in one
// REPEATABLE READ transaction is what makes rollup + tail exact: a refresh that commits meanwhile
// is invisible to the cells and to rollup_state alike.
import type pg from 'pg';
import type { QueuedPool } from './queued-pool.js';
import {
  bucketSignaturesSql,
  integer,
  readCells,
  type BucketSignature,
  type CellSelection,
  type CellStore,
  type SliverCounts,
  type StoredCell,
  type TimeRange,
} from './read-cells.js';
import { eventFilters, fillSlivers, rangeScan, readAbsorbedRows } from './read-slivers.js';

export type { BucketSignature, CachedUsers, CellSelection, CellStore } from './read-cells.js';

export interface MetricsWindow {
  readonly from: number;
  readonly to: number;
  readonly eventName: string | null;
  readonly channel: string | null;
}

export interface MetricsReadRequest {
  readonly window: MetricsWindow;
  /** The column a breakdown groups raw rows by. */
  readonly valueColumn: 'event_name' | 'channel' | null;
  readonly selections: readonly CellSelection[];
  /** Read whole from raw rows. */
  readonly edges: readonly TimeRange[];
  /** Where cells (and slivers) count, and rows not in the rollup yet are read raw. */
  readonly middle: TimeRange | null;
  readonly slivers: readonly (TimeRange & { readonly hour: number })[];
  /** Per bucket, the UTC days [lo, hi] whose signature to read first (null: none). */
  readonly bucketDays: readonly (readonly [number, number] | null)[];
  /** Given the buckets' signatures and the raw rows, the cells and slivers to read: what
   *  an answer cannot take from counts it already knows. */
  readonly choose: (
    signatures: readonly BucketSignature[],
    raw: readonly RawGroup[],
  ) => { days: readonly number[]; hours: readonly number[]; sliverIndexes: readonly number[] };
}

/** Raw rows per (range, user, value): an edge's by edge index, the tail's by epoch second. */
export interface RawGroup {
  readonly at: number;
  readonly edge: number | null;
  readonly userId: string;
  /** null for users the rollup has never seen. */
  readonly userInt: number | null;
  readonly value: string | null;
  readonly eventCount: number;
}

/** The question to the end of its last hour (metrics-plan.ts toHourEnd), read instead when the
 *  snapshot holds no row of the project in [emptyFrom, emptyEnd). */
export interface HourEndReading {
  readonly emptyFrom: number;
  readonly emptyEnd: number;
  readonly request: MetricsReadRequest;
}

export interface MetricsRead {
  /** Epoch ms of the snapshot the answer reflects. */
  readonly asOfMs: number;
  /** Per selection, in request order. */
  readonly cells: readonly (readonly StoredCell[])[];
  /** Per selection: per sliver index, per cell value, what the cell holds of that sliver. */
  readonly slivers: readonly Map<number, Map<string | null, SliverCounts>>[];
  readonly raw: readonly RawGroup[];
}

// One round trip opens the snapshot. Every statement after it has an index path that reads only
// what it needs, but the planner's estimate for "txid newer than the snapshot" comes from
// statistics older than the tail and has chosen a sequential scan of the whole table: sequential
// scans are off for this transaction. So are sorts: the same stale estimate (a handful of rows)
// chose to group the tail's hundreds of thousands of rows by sorting them on disk, four times
// slower than hashing them (hash aggregation spills to disk too when it must).
const beginSql = `
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_sort = off;
SELECT snapshot::text AS snapshot, (extract(epoch FROM now()) * 1000)::int8 AS as_of_ms FROM rollup_state`;

// Edges: a range scan each. The tail, rows newer than the rollup's snapshot, is found through the
// BRIN index on txid; OFFSET 0 keeps the planner from merging its scan into an occurred_at scan
// (without a CTE's copy of every row). The tail takes every project's new rows (the same pages)
// and is filtered by project outside: given a project condition, a planner without fresh
// statistics read the project's whole history through the btree instead. Rows are grouped before
// their users are matched to rollup bitmaps through the user dictionary (only needed when there
// are cells to merge with): a lookup per group, not per row.
const readRawSql = (value: string, withUserInts: boolean) => `
SELECT raw.kind, raw.key::float8 AS key, raw.user_id, ${withUserInts ? 'u.user_int' : 'NULL::int AS user_int'},
       raw.value, raw.event_count
FROM (
  SELECT raw.kind, raw.key, raw.user_id, raw.value, count(*)::int AS event_count FROM (
    SELECT 0 AS kind, r.i::float8 AS key, e.user_id, e.value
    FROM unnest($5::int4[], $6::float8[], $7::float8[]) AS r(i, a, b), ${rangeScan(value)}
    UNION ALL
    SELECT 2, floor(extract(epoch FROM e.occurred_at)), e.user_id, ${value}
    FROM (
      SELECT e.project_id, e.occurred_at, e.user_id, e.event_name, e.channel FROM events e
      WHERE e.txid >= pg_snapshot_xmin($4::pg_snapshot)::text::bigint
        AND NOT pg_visible_in_snapshot(e.txid::text::xid8, $4::pg_snapshot)
      OFFSET 0
    ) e
    WHERE ${eventFilters} AND e.occurred_at >= to_timestamp($8) AND e.occurred_at < to_timestamp($9)
  ) raw
  GROUP BY 1, 2, 3, 4
) raw ${withUserInts ? 'LEFT JOIN user_ids u USING (user_id)' : ''}`;

const valueExpression = { event_name: 'e.event_name', channel: 'e.channel' } as const;

// Whether a window may be read to the end of its last hour: one probe of the project's time index.
const rowsInSql = (projectId: number, from: number, end: number) => `
SELECT EXISTS (SELECT 1 FROM events WHERE project_id = ${integer(projectId)}
  AND occurred_at >= to_timestamp(${integer(from)}) AND occurred_at < to_timestamp(${integer(end)})) AS found`;

/** One project's material for one question. */
export async function readMetrics(
  pool: QueuedPool,
  projectId: number,
  asked: MetricsReadRequest,
  store: CellStore,
  hourEnd?: HourEndReading,
): Promise<MetricsRead & { readonly toHourEnd: boolean }> {
  return pool.withClient(async (client) => {
    // A multi-statement text returns one result per statement (the typings know only one). The
    // signatures of both readings are asked for: which one is read is known only in the snapshot.
    const askedBuckets = asked.bucketDays.length;
    const statements = [beginSql];
    if (hourEnd) statements.push(rowsInSql(projectId, hourEnd.emptyFrom, hourEnd.emptyEnd));
    const signaturesSql = bucketSignaturesSql(projectId, [
      ...asked.bucketDays,
      ...(hourEnd?.request.bucketDays ?? []),
    ]);
    if (signaturesSql) statements.push(signaturesSql);
    const opened = (await client.query(statements.join(';\n'))) as unknown as pg.QueryResult[];
    try {
      // BEGIN, two SETs, then the snapshot's row and the statements added above.
      const { snapshot, as_of_ms } = opened[3]!.rows[0] as { snapshot: string; as_of_ms: string };
      const toHourEnd =
        hourEnd !== undefined && (opened[4]!.rows[0] as { found: boolean }).found === false;
      const request = toHourEnd ? hourEnd.request : asked;
      // The hour-end reading's buckets follow the asked one's in the list.
      const offset = toHourEnd ? askedBuckets : 0;
      const signatures = ((signaturesSql ? opened.at(-1)!.rows : []) as BucketSignature[])
        .filter((s) => s.bucket >= askedBuckets === toHourEnd)
        .map((s) => ({ ...s, bucket: s.bucket - offset }));
      const anyCells = request.middle !== null;
      const valueSql = request.valueColumn ? valueExpression[request.valueColumn] : 'NULL::text';
      const common = [
        projectId,
        request.window.eventName,
        request.window.channel,
        snapshot,
      ] as const;
      const { rows } = await client.query<{
        kind: number;
        key: number;
        user_id: string;
        user_int: number | null;
        value: string | null;
        event_count: number;
      }>(readRawSql(valueSql, anyCells), [
        ...common,
        request.edges.map((_, i) => i),
        request.edges.map((r) => r.from),
        request.edges.map((r) => r.end),
        request.middle?.from ?? 0,
        request.middle?.end ?? 0,
      ]);
      const raw: RawGroup[] = rows.map((r) => ({
        at: r.kind === 0 ? request.edges[r.key]!.from : r.key,
        edge: r.kind === 0 ? r.key : null,
        userId: r.user_id,
        userInt: r.user_int,
        value: r.value,
        eventCount: r.event_count,
      }));
      const pieces = { ...request.choose(signatures, raw), slivers: request.slivers };
      const cells: StoredCell[][] = [];
      const sliverSets: Map<number, Map<string | null, SliverCounts>>[] = [];
      const unread = new Set<number>();
      for (const selection of request.selections) {
        const read = anyCells ? await readCells(client, projectId, pieces, selection, store) : null;
        cells.push(read?.cells ?? []);
        sliverSets.push(read?.slivers ?? new Map<number, Map<string | null, SliverCounts>>());
        for (const i of read?.unreadSlivers ?? []) unread.add(i);
      }
      const sliversToRead = [...unread].sort((a, b) => a - b);
      const absorbed = await readAbsorbedRows(
        client,
        common,
        valueSql,
        request.slivers,
        sliversToRead,
      );
      await client.query('COMMIT');
      request.selections.forEach((selection, s) =>
        fillSlivers(
          selection,
          cells[s]!,
          sliverSets[s]!,
          sliversToRead,
          absorbed,
          request.slivers,
          store,
        ),
      );
      return { asOfMs: Number(as_of_ms), toHourEnd, cells, slivers: sliverSets, raw };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
}
