// Cells, slivers and raw rows → the counts GET /metrics answers: events and exact unique users in
// total, per local bucket, and per breakdown value. Pure: runs once per uncached answer, on the
// main thread.
import type { MetricsRead } from '../sql/read-metrics.js';
import type { UserSet } from '../sql/user-set-format.js';
import type { BucketMemo } from './bucket-memo.js';
import { rawBucket, type MetricsPlan } from './metrics-plan.js';
import type { MetricsQuery } from './metrics-query.js';
import { Tally, type Recollection, type Counts } from './tally.js';

export type Bucket = { bucket_start: number } & Counts;

export interface MetricsAnswer {
  readonly totals: Counts;
  readonly buckets?: Bucket[];
  readonly breakdown?: {
    by: string;
    values: ({ value: string | null } & Counts)[];
    other: Counts;
    series?: { value: string | null; buckets: Bucket[] }[];
  };
}

/** One value's tallies: its total and, with buckets, one per bucket that has anything. */
interface ValueTallies {
  readonly total: Tally;
  /** Sparse: a value touches few of ten thousand hours. */
  readonly buckets: Tally[];
}

const none = new Tally();
const zero: Counts = { count: 0, unique_users: 0 };
const bucketOf = (t: ValueTallies, i: number): Tally => (t.buckets[i] ??= new Tally());

/** memo: unions of cells already counted (cell-bitmap-cache.ts); known: whole buckets' counts
 *  already made (bucket-memo.ts), for the buckets the reader did not read in full. */
export function countMetrics(
  q: MetricsQuery,
  plan: MetricsPlan,
  read: MetricsRead,
  memo?: Recollection,
  known?: BucketMemo,
): MetricsAnswer {
  // Each tally counted once: a bucket remembered and answered asks for the same counts.
  const counted = new Map<Tally, Counts>();
  const countsOf = (tally: Tally): Counts => {
    let counts = counted.get(tally);
    if (counts === undefined) counted.set(tally, (counts = tally.counts(memo)));
    return counts;
  };
  const bucketsOf = (tallies: ValueTallies, selection: number, value: string | null): Bucket[] => {
    const buckets: Bucket[] = [];
    for (let i = 0; i < plan.buckets.length; i++) {
      const counts =
        known && !known.detail.has(i)
          ? (known.knownCounts(selection, i, value) ?? zero)
          : countsOf(tallies.buckets[i] ?? none);
      if (counts.count === 0 && !q.fillZero) continue;
      buckets.push({ bucket_start: plan.boundaries[i]!, ...counts });
    }
    return buckets;
  };
  const tallied = (selection: number) => {
    const byValue = tallySelection(plan, read, selection, known);
    known?.rememberBuckets(selection, byValue, countsOf);
    return byValue;
  };
  const whole = tallied(0).get('') ?? emptyTallies();
  const answer: MetricsAnswer = {
    totals: whole.total.counts(memo),
    ...(q.buckets ? { buckets: bucketsOf(whole, 0, '') } : {}),
  };
  if (!q.breakdown) return { ...answer, ...q.echo };
  const ranked = [...tallied(1)]
    .filter(([, t]) => t.total.count > 0)
    .map(([value, tallies]) => ({ value, tallies, count: tallies.total.count }))
    .sort((a, b) => b.count - a.count || compareValues(a.value, b.value));
  const top = ranked.slice(0, q.breakdown.limit);
  const other = new Tally();
  for (const rest of ranked.slice(q.breakdown.limit)) other.merge(rest.tallies.total);
  return {
    ...answer,
    breakdown: {
      by: q.breakdown.by,
      values: top.map((v) => ({ value: v.value, ...v.tallies.total.counts(memo) })),
      other: other.counts(memo),
      ...(q.buckets
        ? {
            series: top.map((v) => ({ value: v.value, buckets: bucketsOf(v.tallies, 1, v.value) })),
          }
        : {}),
    },
    ...q.echo,
  };
}

const emptyTallies = (): ValueTallies => ({ total: new Tally(), buckets: [] });

/** Null (events with no channel) after every string; strings in code-point order. */
function compareValues(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Every piece of one selection, tallied per value. */
function tallySelection(
  plan: MetricsPlan,
  read: MetricsRead,
  selection: number,
  known: BucketMemo | undefined,
): Map<string | null, ValueTallies> {
  const byValue = new Map<string | null, ValueTallies>();
  const of = (value: string | null): ValueTallies => {
    let t = byValue.get(value);
    if (!t) byValue.set(value, (t = emptyTallies()));
    return t;
  };
  // The window's whole hours: one union per value, known, or made here from their cells.
  const knownCells = known?.knownTotalCells(selection);
  const use = piecesIndex(plan, knownCells === undefined, known?.detail);
  const totalCells = new Map<string | null, { eventCount: number; users: UserSet[] }>();
  for (const [value, cells] of knownCells ?? []) {
    of(value).total.addCell(cells.eventCount, cells.users, cells.identity);
  }
  for (const cell of read.cells[selection] ?? []) {
    if (cell.users === undefined) continue; // read for its slivers' version only
    const at = (cell.span === 'day' ? use.days : use.hours).get(cell.start);
    if (!at) continue;
    const t = of(cell.value);
    const identity = `${cell.key}@${cell.version}`;
    if (at.total) {
      t.total.addCell(cell.eventCount, cell.users, identity);
      const cells = totalCells.get(cell.value) ?? { eventCount: 0, users: [] };
      totalCells.set(cell.value, cells);
      cells.eventCount += cell.eventCount;
      cells.users.push(cell.users);
    }
    if (at.bucket >= 0) bucketOf(t, at.bucket).addCell(cell.eventCount, cell.users, identity);
  }
  known?.rememberTotalCells(selection, totalCells);
  for (const [sliver, values] of read.slivers[selection] ?? []) {
    const bucket = use.sliverBucket.get(sliver);
    if (bucket === undefined) continue;
    for (const [value, kept] of values)
      bucketOf(of(value), bucket).addCell(kept.eventCount, kept.users, kept.identity);
  }
  const whole = selection === 0;
  for (const r of read.raw) {
    const t = of(whole ? '' : r.value);
    t.total.addRaw(r.eventCount, r.userInt, r.userId);
    if (plan.boundaries.length === 0) continue;
    const bucket = rawBucket(plan, r);
    bucketOf(t, bucket).addRaw(r.eventCount, r.userInt, r.userId);
  }
  return byValue;
}

interface PieceUse {
  total: boolean;
  /** -1: in no bucket's pieces. */
  bucket: number;
}

/** Where each cell read counts: the totals (unless known) and the buckets (only those counted in
 *  full, when some are known). */
function piecesIndex(
  plan: MetricsPlan,
  withTotals: boolean,
  buckets: ReadonlySet<number> | undefined,
): {
  days: Map<number, PieceUse>;
  hours: Map<number, PieceUse>;
  sliverBucket: Map<number, number>;
} {
  const days = new Map<number, PieceUse>();
  const hours = new Map<number, PieceUse>();
  const mark = (map: Map<number, PieceUse>, start: number, bucket: number) => {
    const use = map.get(start) ?? { total: false, bucket: -1 };
    map.set(start, use);
    if (bucket < 0) use.total = true;
    else use.bucket = bucket;
  };
  if (withTotals) {
    for (const d of plan.totals.days) mark(days, d, -1);
    for (const h of plan.totals.hours) mark(hours, h, -1);
  }
  const sliverBucket = new Map<number, number>();
  plan.buckets.forEach((pieces, i) => {
    if (buckets && !buckets.has(i)) return;
    for (const d of pieces.days) mark(days, d, i);
    for (const h of pieces.hours) mark(hours, h, i);
    for (const s of pieces.slivers) sliverBucket.set(s, i);
  });
  return { days, hours, sliverBucket };
}
