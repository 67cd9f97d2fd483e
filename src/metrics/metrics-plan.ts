// Which stored pieces answer a question: the window cut into rollup cells (whole UTC days and
// hours), slivers shorter than an hour inside a cell's hour (where a local bucket begins off the
// hour), and the raw edges. Pure arithmetic on epoch seconds.
import { secondsPerDay, secondsPerHour } from '../sql/rollup-spans.js';
import type { MetricsQuery } from './metrics-query.js';

export interface Range {
  readonly from: number;
  /** Exclusive. */
  readonly end: number;
}

/** Part of one UTC hour, inside the window's whole hours: its events are in that hour's cell. */
export interface Sliver extends Range {
  readonly hour: number;
}

export interface Pieces {
  readonly days: number[];
  readonly hours: number[];
  /** Indexes into MetricsPlan.slivers. */
  readonly slivers: number[];
}

export interface MetricsPlan {
  /** The window's partial first and last hours, cut at bucket starts: read whole from raw rows. */
  readonly edges: Range[];
  /** The whole hours between the edges: cells, slivers, and the rows not in the rollup yet. */
  readonly middle: Range | null;
  readonly slivers: Sliver[];
  readonly totals: Pieces;
  /** One per bucket, in order: [boundaries[i], boundaries[i + 1]). */
  readonly buckets: Pieces[];
  /** Per bucket, the UTC days [first, last] its cells lie in, whose signature may name its
   *  counts (bucket-memo.ts); null: it has no cells (raw edges only). */
  readonly bucketDays: ([number, number] | null)[];
  /** Per edge, the bucket it lies in (none without buckets). */
  readonly edgeBuckets: number[];
  readonly boundaries: readonly number[];
}

const ceilTo = (t: number, unit: number) => Math.ceil(t / unit) * unit;
const floorTo = (t: number, unit: number) => Math.floor(t / unit) * unit;
const emptyPieces = (): Pieces => ({ days: [], hours: [], slivers: [] });

export function planMetrics(q: MetricsQuery): MetricsPlan {
  const end = q.to + 1;
  const boundaries = q.buckets?.boundaries ?? [];
  const wholeFrom = ceilTo(q.from, secondsPerHour);
  const wholeEnd = floorTo(end, secondsPerHour);
  const middle = wholeFrom < wholeEnd ? { from: wholeFrom, end: wholeEnd } : null;
  const edgeRanges: Range[] = !middle
    ? [{ from: q.from, end }]
    : [
        { from: q.from, end: wholeFrom },
        { from: wholeEnd, end },
      ].filter((r) => r.from < r.end);

  const plan: MetricsPlan = {
    edges: [],
    middle,
    slivers: [],
    totals: emptyPieces(),
    buckets: boundaries.slice(1).map(emptyPieces),
    bucketDays: boundaries.slice(1).map(() => null),
    edgeBuckets: [],
    boundaries,
  };
  const bucketOf = (t: number) => bucketIndex(boundaries, t);
  for (const range of edgeRanges) {
    for (const part of cutAt(range, boundaries)) {
      const index = plan.edges.push(part) - 1;
      if (boundaries.length > 0) plan.edgeBuckets[index] = bucketOf(part.from);
    }
  }
  if (middle) {
    decompose(middle, plan.totals, plan.slivers);
    for (const part of cutAt(middle, boundaries)) {
      if (boundaries.length === 0) continue;
      const bucket = bucketOf(part.from);
      const pieces = plan.buckets[bucket]!;
      decompose(part, pieces, plan.slivers);
      plan.bucketDays[bucket] = [
        Math.floor(part.from / secondsPerDay),
        Math.floor((part.end - 1) / secondsPerDay),
      ];
    }
  }
  return plan;
}

/** The same question to the end of its last hour, when that hour would otherwise be an edge read
 *  raw (a window ending now: under load, every row of the current hour on every answer). Where the
 *  project has no row after `to` in that hour, both have the same answer, and this one counts the
 *  hour's cell and the rows not absorbed yet. null where nothing would change: `to` ends an hour,
 *  the window lies inside one hour, or a bucket ends inside the hour. */
export function toHourEnd(q: MetricsQuery): MetricsQuery | null {
  const end = q.to + 1;
  const hourEnd = ceilTo(end, secondsPerHour);
  if (hourEnd === end || hourEnd - secondsPerHour < q.from) return null;
  const lastBoundary = q.buckets?.boundaries.at(-1);
  if (lastBoundary !== undefined && lastBoundary < hourEnd) return null;
  return { ...q, to: hourEnd - 1 };
}

/** The bucket a raw row group counts in: its edge's, or the one containing its second. */
export function rawBucket(plan: MetricsPlan, raw: { edge: number | null; at: number }): number {
  return raw.edge !== null ? plan.edgeBuckets[raw.edge]! : bucketIndex(plan.boundaries, raw.at);
}

/** The index of the bucket containing t: boundaries[i] ≤ t < boundaries[i + 1]. */
export function bucketIndex(boundaries: readonly number[], t: number): number {
  let lo = 0;
  let hi = boundaries.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (boundaries[mid]! <= t) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function cutAt(range: Range, boundaries: readonly number[]): Range[] {
  const parts: Range[] = [];
  let from = range.from;
  for (const b of boundaries) {
    if (b <= from) continue;
    if (b >= range.end) break;
    parts.push({ from, end: b });
    from = b;
  }
  parts.push({ from, end: range.end });
  return parts;
}

/** The fewest cells for [from, end), hour-aligned at neither end necessarily: whole days, whole
 *  hours, and slivers of the hours cut by the range's ends. */
function decompose(range: Range, into: Pieces, slivers: Sliver[]): void {
  let at = range.from;
  while (at < range.end) {
    if (at % secondsPerDay === 0 && at + secondsPerDay <= range.end) {
      into.days.push(at / secondsPerDay);
      at += secondsPerDay;
    } else if (at % secondsPerHour === 0 && at + secondsPerHour <= range.end) {
      into.hours.push(at / secondsPerHour);
      at += secondsPerHour;
    } else {
      const hour = Math.floor(at / secondsPerHour);
      const end = Math.min(range.end, (hour + 1) * secondsPerHour);
      into.slivers.push(slivers.push({ from: at, end, hour }) - 1);
      at = end;
    }
  }
}
