// Slivers (parts of an hour, where a local bucket begins off the hour): what the rollup has absorbed
// of each, read from the raw rows once per version of its hour cell and kept decoded beside it.
import type pg from 'pg';
import type {
  CellSelection,
  CellStore,
  SliverCounts,
  StoredCell,
  TimeRange,
} from './read-cells.js';
import { sliverKey } from './read-cells.js';
import { bitmapWith } from './user-set-format.js';

export type Sliver = TimeRange & { readonly hour: number };

/** $1 project, $2 event_name, $3 channel: the filters every raw read shares. */
export const eventFilters = `e.project_id = $1
  AND ($2::text IS NULL OR e.event_name = $2) AND ($3::text IS NULL OR e.channel = $3)`;

// One index scan by project and occurred_at per range, whatever the planner estimates: joined
// plainly, sixteen ranges of unknown width looked like more than the whole table, and it read the
// project's every row instead (23 s at 10M events). OFFSET 0 keeps the subquery a subquery.
export const rangeScan = (value: string, more = '') => `LATERAL (
    SELECT e.user_id, ${value} AS value FROM events e
    WHERE ${eventFilters} AND e.occurred_at >= to_timestamp(r.a) AND e.occurred_at < to_timestamp(r.b) ${more}
    OFFSET 0) e`;

// What the rollup has absorbed of each range (its cells' share; $4 is the rollup's snapshot), per
// value, as one array of user numbers each (every absorbed user is in the dictionary: the refresh
// registered it). Aggregated here: a sliver of a busy hour holds thousands of rows.
const readAbsorbedSql = (value: string) => `
SELECT r.i AS key, e.value, count(*)::int AS event_count,
       array_agg(DISTINCT u.user_int) AS user_ints
FROM unnest($5::int4[], $6::float8[], $7::float8[]) AS r(i, a, b),
  ${rangeScan(value, 'AND pg_visible_in_snapshot(e.txid::text::xid8, $4::pg_snapshot)')}
JOIN user_ids u ON u.user_id = e.user_id
GROUP BY 1, 2`;

interface AbsorbedRow {
  /** The sliver's index in the request's list. */
  readonly key: number;
  readonly value: string | null;
  readonly event_count: number;
  readonly user_ints: number[];
}

/** Slivers read per statement: each holds at most one hour of rows. */
const sliversPerStatement = 16;

/** Slivers being read now, by everything their rows depend on. A long window's first answer in a
 *  half-hour zone reads hundreds of thousands of rows, and a dashboard asks for it several times at
 *  once: a request needing a sliver another is reading waits for those rows instead. */
const inFlight = new Map<string, Promise<readonly AbsorbedRow[]>>();

/** The absorbed rows of the slivers at `indexes`, keyed by those indexes. `shared` are the first
 *  four parameters ($1–$4 above); `value` the breakdown's column expression. */
export async function readAbsorbedRows(
  client: pg.PoolClient,
  shared: readonly [number, string | null, string | null, string],
  value: string,
  slivers: readonly Sliver[],
  indexes: readonly number[],
): Promise<AbsorbedRow[]> {
  const keyOf = (i: number) =>
    JSON.stringify([...shared, value, slivers[i]!.from, slivers[i]!.end]);
  const waits: Promise<AbsorbedRow[]>[] = [];
  const mine: number[] = [];
  for (const i of indexes) {
    const pending = inFlight.get(keyOf(i));
    if (pending) waits.push(pending.then((rows) => rows.map((r) => ({ ...r, key: i }))));
    else mine.push(i);
  }
  // A statement per few slivers: one statement for all of a long window's outlasted
  // PG_STATEMENT_TIMEOUT_MS and so was never kept. Each stays short and starts when the one before
  // it is done; all are promised from the start, so a request arriving meanwhile waits for every one.
  const reads: Promise<readonly AbsorbedRow[]>[] = [];
  let previous: Promise<unknown> = Promise.resolve();
  for (let at = 0; at < mine.length; at += sliversPerStatement) {
    const chunk = mine.slice(at, at + sliversPerStatement);
    const read = previous
      .then(() =>
        client.query<AbsorbedRow>(readAbsorbedSql(value), [
          ...shared,
          chunk,
          chunk.map((i) => slivers[i]!.from),
          chunk.map((i) => slivers[i]!.end),
        ]),
      )
      .then((result) => result.rows);
    previous = read;
    reads.push(read);
    for (const i of chunk) {
      const key = keyOf(i);
      const rows = read.then((all) => all.filter((r) => r.key === i));
      inFlight.set(key, rows);
      void rows.catch(() => undefined).finally(() => inFlight.delete(key));
    }
  }
  // Awaited below in turn: a failure is handled there, the rest must not go unhandled meanwhile.
  for (const p of [...reads, ...waits]) p.catch(() => undefined);
  const absorbed: AbsorbedRow[] = [];
  for (const rows of await Promise.all([...reads, ...waits]))
    for (const r of rows) absorbed.push(r);
  return absorbed;
}

/** What each hour cell holds of each sliver just read, kept at the cell's version. */
export function fillSlivers(
  selection: CellSelection,
  cells: readonly StoredCell[],
  sets: Map<number, Map<string | null, SliverCounts>>,
  read: readonly number[],
  absorbed: readonly AbsorbedRow[],
  slivers: readonly Sliver[],
  store: CellStore,
): void {
  const rowsOf = new Map<number, AbsorbedRow[]>();
  for (const r of absorbed) {
    const list = rowsOf.get(r.key);
    if (list) list.push(r);
    else rowsOf.set(r.key, [r]);
  }
  for (const i of read) {
    const sliver = slivers[i]!;
    const owners = cells.filter((c) => c.span === 'hour' && c.start === sliver.hour);
    const bySliver = new Map<string | null, SliverCounts>();
    sets.set(i, bySliver);
    const values = new Map<string | null, { eventCount: number; ints: number[] }>();
    for (const r of rowsOf.get(i) ?? []) {
      // The whole question's share sums every value's rows.
      const value = selection.by === null ? '' : r.value;
      const v = values.get(value) ?? { eventCount: 0, ints: [] };
      values.set(value, v);
      v.eventCount += r.event_count;
      for (const u of r.user_ints) v.ints.push(u);
    }
    for (const cell of owners) {
      const v = values.get(cell.value);
      const counts = { eventCount: v?.eventCount ?? 0, users: bitmapWith(null, v?.ints ?? []) };
      const key = sliverKey(cell, sliver);
      bySliver.set(cell.value, { ...counts, identity: `${key}@${cell.version}` });
      store.set(key, cell.version, counts);
    }
  }
}
