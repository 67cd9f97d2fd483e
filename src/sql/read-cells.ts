// The rollup cells of one question, inside the reader's snapshot: versions first, then the user
// sets of only the cells (and hour slivers) not already decoded at that version.
//
// Decoded user sets are kept between requests: a 90-day answer needs ~90 day cells of up to
// 12.5 KB each at 100k users, and fetching and decoding them on every uncached request cost most
// of its time, yet a past day's cell changes only when late events arrive for it. Each entry
// carries the row version it was read at (the cell's xmin), so a kept set is never served for a
// cell that changed. A sliver (part of an hour) is kept at its hour cell's version: the cell's
// rows are exactly the sliver's absorbed rows plus the rest of the hour.
import type pg from 'pg';
import type { MetricsReadRequest, SliverCounts, TimeRange } from './read-metrics.js';
import { rollupGrains, rollupSpans, type RollupSpan } from './rollup-spans.js';
import { decodeUserSet, type UserSet } from './user-set-format.js';

export interface CellSelection {
  /** Grain codes whose cells answer the question. */
  readonly grains: readonly number[];
  /** The key columns' fixed values; null: any (the column a breakdown groups by). */
  readonly eventName: string | null;
  readonly channel: string | null;
  /** The column a cell's value comes from; null: every cell answers for the whole question. */
  readonly by: 'event_name' | 'channel' | null;
}

export interface StoredCell {
  readonly span: RollupSpan;
  readonly start: number;
  /** '' for the whole question; else the breakdown value (null: events with no channel). */
  readonly value: string | null;
  readonly eventCount: number;
  readonly version: string;
  /** Identifies the cell across requests. */
  readonly key: string;
  /** Only for the day and hour cells counted whole. */
  users?: UserSet;
}

export interface CachedUsers {
  readonly users: UserSet;
  readonly eventCount: number;
}

/** Decoded sets by key and row version: the caller keeps them between requests. */
export interface CellStore {
  get(key: string, version: string): CachedUsers | undefined;
  set(key: string, version: string, entry: CachedUsers): void;
}

const cellWhere = `project_id = $1 AND grain = ANY($2::int2[])
  AND ($3::text IS NULL OR event_name = $3) AND ($4::text IS NULL OR channel = $4)`;
const readVersionsSql = `
SELECT 'day' AS span, day AS start, grain, event_name, channel, event_count::int AS event_count,
       xmin::text AS version
FROM ${rollupSpans.day.table} WHERE ${cellWhere} AND day = ANY($5::int4[])
UNION ALL
SELECT 'hour', hour, grain, event_name, channel, event_count::int, xmin::text
FROM ${rollupSpans.hour.table} WHERE ${cellWhere} AND hour = ANY($6::int4[])`;

const readUsersSql = `
SELECT 'day' AS span, c.day AS start, c.grain, c.event_name, c.channel, c.users
FROM ${rollupSpans.day.table} c
JOIN unnest($2::int2[], $3::text[], $4::text[], $5::int4[]) AS k(grain, event_name, channel, day)
  USING (grain, event_name, channel, day)
WHERE c.project_id = $1
UNION ALL
SELECT 'hour', c.hour, c.grain, c.event_name, c.channel, c.users
FROM ${rollupSpans.hour.table} c
JOIN unnest($6::int2[], $7::text[], $8::text[], $9::int4[]) AS k(grain, event_name, channel, hour)
  USING (grain, event_name, channel, hour)
WHERE c.project_id = $1`;

interface Row {
  span: RollupSpan;
  start: number;
  grain: number;
  event_name: string;
  channel: string;
}

const rowKey = (projectId: number, r: Row) =>
  [r.span, projectId, r.grain, r.event_name, r.channel, r.start].join('\u0000');

function valueOf(selection: CellSelection, r: Row): string | null {
  if (selection.by === 'event_name') return r.event_name;
  if (selection.by === 'channel') return rollupGrains[r.grain]!.channelIsNull ? null : r.channel;
  return '';
}

export async function readCells(
  client: pg.PoolClient,
  projectId: number,
  request: MetricsReadRequest,
  selection: CellSelection,
  store: CellStore,
): Promise<{
  cells: StoredCell[];
  slivers: Map<number, Map<string | null, SliverCounts>>;
  /** Slivers some cell of which is not kept at its version: read their absorbed rows. */
  unreadSlivers: number[];
}> {
  const countedHours = new Set(request.hours);
  const hours = [...new Set([...request.hours, ...request.slivers.map((s) => s.hour)])];
  const { rows } = await client.query<Row & { event_count: number; version: string }>(
    readVersionsSql,
    [projectId, selection.grains, selection.eventName, selection.channel, request.days, hours],
  );
  const cells: StoredCell[] = [];
  const missing: (Row & { cell: StoredCell })[] = [];
  for (const r of rows) {
    const cell: StoredCell = {
      span: r.span,
      start: r.start,
      value: valueOf(selection, r),
      eventCount: r.event_count,
      version: r.version,
      key: rowKey(projectId, r),
    };
    cells.push(cell);
    if (r.span === 'hour' && !countedHours.has(r.start)) continue;
    cell.users = store.get(cell.key, cell.version)?.users;
    if (cell.users === undefined) missing.push({ ...r, cell });
  }
  if (missing.length > 0) {
    const of = (span: RollupSpan) => missing.filter((m) => m.span === span);
    const columns = (list: Row[]) => [
      list.map((m) => m.grain),
      list.map((m) => m.event_name),
      list.map((m) => m.channel),
      list.map((m) => m.start),
    ];
    const fetched = await client.query<Row & { users: Buffer }>(readUsersSql, [
      projectId,
      ...columns(of('day')),
      ...columns(of('hour')),
    ]);
    const byKey = new Map(fetched.rows.map((r) => [rowKey(projectId, r), r.users]));
    for (const m of missing) {
      m.cell.users = decodeUserSet(byKey.get(m.cell.key)!);
      store.set(m.cell.key, m.cell.version, { users: m.cell.users, eventCount: m.cell.eventCount });
    }
  }
  const slivers = new Map<number, Map<string | null, SliverCounts>>();
  const unreadSlivers: number[] = [];
  const hourCells = new Map<number, StoredCell[]>();
  for (const c of cells) {
    if (c.span !== 'hour') continue;
    const list = hourCells.get(c.start);
    if (list) list.push(c);
    else hourCells.set(c.start, [c]);
  }
  request.slivers.forEach((sliver, i) => {
    const kept = new Map<string | null, SliverCounts>();
    for (const cell of hourCells.get(sliver.hour) ?? []) {
      const key = sliverKey(cell, sliver);
      const entry = store.get(key, cell.version);
      if (entry === undefined) {
        unreadSlivers.push(i);
        return;
      }
      kept.set(cell.value, { ...entry, identity: `${key}@${cell.version}` });
    }
    slivers.set(i, kept);
  });
  return { cells, slivers, unreadSlivers };
}

export function sliverKey(cell: StoredCell, sliver: TimeRange): string {
  return `${cell.key}\u0000${sliver.from}\u0000${sliver.end}`;
}
