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
import { rollupGrainFor, rollupGrains, rollupSpans, type RollupSpan } from './rollup-spans.js';
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

export interface TimeRange {
  readonly from: number;
  /** Exclusive. */
  readonly end: number;
}

/** What one cell holds of one sliver; identity names the sliver and the cell's version. */
export type SliverCounts = CachedUsers & { readonly identity: string };

/** Which cells and slivers to read. */
export interface CellPieces {
  readonly days: readonly number[];
  readonly hours: readonly number[];
  readonly slivers: readonly (TimeRange & { readonly hour: number })[];
  /** The slivers to read, as indexes into slivers. */
  readonly sliverIndexes: readonly number[];
}

/** What every cell of one bucket is, at its version, for any selection and value: the row
 *  versions of the project's whole-question day cells over the UTC days the bucket touches. Every
 *  event absorbed into any cell of those days, of any grain, rewrites one of them. */
export interface BucketSignature {
  readonly bucket: number;
  readonly signature: string;
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
// A span's starts are either listed (a few edge hours) or, when they fill most of their range (the
// hours of local days off the UTC midnight), read as one range: one index descent instead of one
// per start, the starts not asked for left out afterwards.
const startsIn = (unit: string, param: number, asRange: boolean) =>
  asRange
    ? `${unit} BETWEEN ($${param}::int4[])[1] AND ($${param}::int4[])[2]`
    : `${unit} = ANY($${param}::int4[])`;
const readVersionsSql = (daysAsRange: boolean, hoursAsRange: boolean) => `
SELECT 'day' AS span, day AS start, grain, event_name, channel, event_count::int AS event_count,
       xmin::text AS version
FROM ${rollupSpans.day.table} WHERE ${cellWhere} AND ${startsIn('day', 5, daysAsRange)}
UNION ALL
SELECT 'hour', hour, grain, event_name, channel, event_count::int, xmin::text
FROM ${rollupSpans.hour.table} WHERE ${cellWhere} AND ${startsIn('hour', 6, hoursAsRange)}`;

/** [min, max] when the starts fill at least half of it, else undefined. */
function denseRange(starts: readonly number[]): [number, number] | undefined {
  if (starts.length < 32) return undefined;
  const min = Math.min(...starts);
  const max = Math.max(...starts);
  return 2 * starts.length >= max - min + 1 ? [min, max] : undefined;
}

const wholeGrain = rollupGrainFor(false, false).code;
const readSignaturesSql = (projectId: number, buckets: string, lo: string, hi: string) => `
SELECT r.b AS bucket, md5(string_agg(c.day::text || ':' || c.xmin::text, ',' ORDER BY c.day)) AS signature
FROM unnest(${buckets}, ${lo}, ${hi}) AS r(b, lo, hi)
JOIN ${rollupSpans.day.table} c ON c.project_id = ${projectId} AND c.grain = ${wholeGrain}
  AND c.event_name = '' AND c.channel = '' AND c.day BETWEEN r.lo AND r.hi
GROUP BY 1`;

/** A number this process computed (never request text), checked before it goes into SQL text. */
export function integer(value: number): number {
  if (!Number.isSafeInteger(value)) throw new Error(`not an integer: ${value}`);
  return value;
}
const intArrayLiteral = (values: readonly number[]) =>
  `'{${values.map(integer).join(',')}}'::int4[]`;

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

const cellsPerStatement = 256;

const rowKey = (projectId: number, r: Row) =>
  [r.span, projectId, r.grain, r.event_name, r.channel, r.start].join('\u0000');

function valueOf(selection: CellSelection, r: Row): string | null {
  if (selection.by === 'event_name') return r.event_name;
  if (selection.by === 'channel') return rollupGrains[r.grain]!.channelIsNull ? null : r.channel;
  return '';
}

/** The statement reading, per bucket (UTC days [lo, hi] of each; null: none), the signature of
 *  its cells; a bucket with no day cell gets none (nothing of it is absorbed). Its numbers are
 *  written into the text, so it rides in the round trip that opens the snapshot (a text of several
 *  statements takes no parameters). null: no bucket asks for one. */
export function bucketSignaturesSql(
  projectId: number,
  bucketDays: readonly (readonly [number, number] | null)[],
): string | null {
  const asked = bucketDays.flatMap((span, b) => (span ? [[b, ...span]] : []));
  if (asked.length === 0) return null;
  const [buckets, lo, hi] = [0, 1, 2].map((k) => intArrayLiteral(asked.map((a) => a[k]!)));
  return readSignaturesSql(integer(projectId), buckets!, lo!, hi!);
}

export async function readCells(
  client: pg.PoolClient,
  projectId: number,
  request: CellPieces,
  selection: CellSelection,
  store: CellStore,
): Promise<{
  cells: StoredCell[];
  slivers: Map<number, Map<string | null, SliverCounts>>;
  /** Slivers some cell of which is not kept at its version: read their absorbed rows. */
  unreadSlivers: number[];
}> {
  const countedHours = new Set(request.hours);
  const hours = [
    ...new Set([...request.hours, ...request.sliverIndexes.map((i) => request.slivers[i]!.hour)]),
  ];
  // Every bucket known and the totals' days too: nothing to ask.
  if (request.days.length === 0 && hours.length === 0)
    return { cells: [], slivers: new Map(), unreadSlivers: [] };
  const dayRange = denseRange(request.days);
  const hourRange = denseRange(hours);
  const { rows } = await client.query<Row & { event_count: number; version: string }>(
    readVersionsSql(dayRange !== undefined, hourRange !== undefined),
    [
      projectId,
      selection.grains,
      selection.eventName,
      selection.channel,
      dayRange ?? request.days,
      hourRange ?? hours,
    ],
  );
  const askedDays = new Set(request.days);
  const askedHours = new Set(hours);
  const cells: StoredCell[] = [];
  const missing: (Row & { cell: StoredCell })[] = [];
  for (const r of rows) {
    if (!(r.span === 'day' ? askedDays : askedHours).has(r.start)) continue;
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
  // A few hundred cells per statement: a cold 90-day answer by local day is ~2,000 cells of up to
  // 12.5 KB, and no statement may grow with the window (PG_STATEMENT_TIMEOUT_MS).
  for (let at = 0; at < missing.length; at += cellsPerStatement) {
    const chunk = missing.slice(at, at + cellsPerStatement);
    const of = (span: RollupSpan) => chunk.filter((m) => m.span === span);
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
    for (const m of chunk) {
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
  for (const i of request.sliverIndexes) {
    const sliver = request.slivers[i]!;
    const kept = new Map<string | null, SliverCounts>();
    let complete = true;
    for (const cell of hourCells.get(sliver.hour) ?? []) {
      const key = sliverKey(cell, sliver);
      const entry = store.get(key, cell.version);
      if (entry === undefined) complete = false;
      else kept.set(cell.value, { ...entry, identity: `${key}@${cell.version}` });
    }
    if (complete) slivers.set(i, kept);
    else unreadSlivers.push(i);
  }
  return { cells, slivers, unreadSlivers };
}

export function sliverKey(cell: StoredCell, sliver: TimeRange): string {
  return `${cell.key}\u0000${sliver.from}\u0000${sliver.end}`;
}
