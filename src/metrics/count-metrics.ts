// Cells, slivers and raw rows → the counts GET /metrics answers: events and exact unique users in
// total, per local bucket, and per breakdown value. Pure: runs once per uncached answer, on the
// main thread.
import type { MetricsRead } from '../sql/read-metrics.js';
import { bucketIndex, type MetricsPlan } from './metrics-plan.js';
import type { MetricsQuery } from './metrics-query.js';
import { Tally, type CountMemo, type Counts } from './tally.js';

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

/** One value's tallies: its total and, with buckets, one per bucket. */
interface ValueTallies {
  readonly total: Tally;
  readonly buckets: Tally[];
}

/** memo: unique users of unions of cells already counted (cell-bitmap-cache.ts). */
export function countMetrics(
  q: MetricsQuery,
  plan: MetricsPlan,
  read: MetricsRead,
  memo?: CountMemo,
): MetricsAnswer {
  const bucketsOf = (tallies: ValueTallies): Bucket[] => {
    const buckets: Bucket[] = [];
    tallies.buckets.forEach((tally, i) => {
      if (tally.count === 0 && !q.fillZero) return;
      buckets.push({ bucket_start: plan.boundaries[i]!, ...tally.counts(memo) });
    });
    return buckets;
  };
  const whole = tallySelection(plan, read, 0).get('') ?? emptyTallies(plan);
  const answer: MetricsAnswer = {
    totals: whole.total.counts(memo),
    ...(q.buckets ? { buckets: bucketsOf(whole) } : {}),
  };
  if (!q.breakdown) return { ...answer, ...q.echo };
  const ranked = [...tallySelection(plan, read, 1)]
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
      other: other.counts(),
      ...(q.buckets
        ? { series: top.map((v) => ({ value: v.value, buckets: bucketsOf(v.tallies) })) }
        : {}),
    },
    ...q.echo,
  };
}

const emptyTallies = (plan: MetricsPlan): ValueTallies => ({
  total: new Tally(),
  buckets: plan.buckets.map(() => new Tally()),
});

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
): Map<string | null, ValueTallies> {
  const byValue = new Map<string | null, ValueTallies>();
  const of = (value: string | null): ValueTallies => {
    let t = byValue.get(value);
    if (!t) byValue.set(value, (t = emptyTallies(plan)));
    return t;
  };
  const use = piecesIndex(plan);
  for (const cell of read.cells[selection] ?? []) {
    if (cell.users === undefined) continue; // read for its slivers' version only
    const at = (cell.span === 'day' ? use.days : use.hours).get(cell.start);
    if (!at) continue;
    const t = of(cell.value);
    const identity = `${cell.key}@${cell.version}`;
    if (at.total) t.total.addCell(cell.eventCount, cell.users, identity);
    if (at.bucket >= 0) t.buckets[at.bucket]!.addCell(cell.eventCount, cell.users, identity);
  }
  for (const [sliver, values] of read.slivers[selection] ?? []) {
    const bucket = use.sliverBucket.get(sliver);
    if (bucket === undefined) continue;
    for (const [value, kept] of values)
      of(value).buckets[bucket]!.addCell(kept.eventCount, kept.users, kept.identity);
  }
  const whole = selection === 0;
  for (const r of read.raw) {
    const t = of(whole ? '' : r.value);
    t.total.addRaw(r.eventCount, r.userInt, r.userId);
    if (plan.boundaries.length === 0) continue;
    const bucket = r.edge !== null ? use.edgeBucket[r.edge]! : bucketIndex(plan.boundaries, r.at);
    t.buckets[bucket]!.addRaw(r.eventCount, r.userInt, r.userId);
  }
  return byValue;
}

interface PieceUse {
  total: boolean;
  /** -1: in no bucket's pieces. */
  bucket: number;
}

function piecesIndex(plan: MetricsPlan): {
  days: Map<number, PieceUse>;
  hours: Map<number, PieceUse>;
  sliverBucket: Map<number, number>;
  edgeBucket: number[];
} {
  const days = new Map<number, PieceUse>();
  const hours = new Map<number, PieceUse>();
  const mark = (map: Map<number, PieceUse>, start: number, bucket: number) => {
    const use = map.get(start) ?? { total: false, bucket: -1 };
    map.set(start, use);
    if (bucket < 0) use.total = true;
    else use.bucket = bucket;
  };
  for (const d of plan.totals.days) mark(days, d, -1);
  for (const h of plan.totals.hours) mark(hours, h, -1);
  const sliverBucket = new Map<number, number>();
  const edgeBucket: number[] = [];
  plan.buckets.forEach((pieces, i) => {
    for (const d of pieces.days) mark(days, d, i);
    for (const h of pieces.hours) mark(hours, h, i);
    for (const s of pieces.slivers) sliverBucket.set(s, i);
    for (const e of pieces.edges) edgeBucket[e] = i;
  });
  return { days, hours, sliverBucket, edgeBucket };
}
