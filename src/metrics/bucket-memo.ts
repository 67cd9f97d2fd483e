// Counts of whole buckets already made, by the signature of their cells. A local day off the UTC
// midnight is 24 hour cells, and a breakdown's day is a cell per value; reading and counting them
// for each of 90 buckets on every uncached answer cost more than everything else in it, yet a past
// bucket changes only when late events reach it. So the reader first asks the database for each
// bucket's signature (the row versions of the project's whole-question day cells it touches,
// hashed: any event absorbed into the bucket rewrites one), and only buckets whose counts are not
// known at that signature, or that hold raw rows, are read and counted in full.
import type { BucketSignature, CachedUsers, CellSelection, RawGroup } from '../sql/read-metrics.js';
import { bitmapWith, orUserSetInto, type UserSet } from '../sql/user-set-format.js';
import { rawBucket, type MetricsPlan } from './metrics-plan.js';
import { secondsPerDay } from '../sql/rollup-spans.js';
import { bytesPerCounts, type Counts, type Recollection, type Tally } from './tally.js';

/** The cells of the window's whole hours for one value, as one union, named for the count memo
 *  by its key. */
export type KnownCells = CachedUsers & { readonly identity: string };

/** Per value (null: events with no channel; '' for the whole question). */
type ValueCounts = ReadonlyMap<string | null, Counts>;

/** Without a breakdown, a bucket of fewer hours and slivers than this (a UTC day is one cell) is
 *  read and counted as fast as its signature. */
const cellsWorthASignature = 4;
const daysOf = (t: number) => Math.floor(t / secondsPerDay);
/** Totals of fewer whole days than this are read as fast as their signature. */
const daysWorthASignature = 8;

export class BucketMemo {
  /** Buckets counted from their cells, slivers and raw rows this time. */
  readonly detail = new Set<number>();
  /** Buckets holding raw rows (window edges, the tail): their counts are never remembered. */
  private readonly withRaw = new Set<number>();
  /** Per bucket, then the window's whole days at index buckets.length. */
  private signatures = new Map<number, string>();
  /** Per selection, per bucket not counted in full: every value's counts. */
  private readonly known = new Map<number, Map<number, ValueCounts>>();
  /** Per selection whose totals' cells are known: value → their union. */
  private readonly knownCells = new Map<number, ReadonlyMap<string | null, KnownCells>>();
  /** The signature ranges to ask for: one per bucket, then the UTC days of the window's whole
   *  hours (the totals' cells). */
  readonly signatureDays: readonly ([number, number] | null)[];
  /** Per selection, what its buckets' keys begin with. */
  private readonly selectionKeys: readonly string[];

  constructor(
    private readonly memo: Recollection,
    private readonly plan: MetricsPlan,
    private readonly selections: readonly CellSelection[],
    private readonly project: number,
    private readonly window: { readonly from: number; readonly to: number },
  ) {
    const breakdown = selections.length > 1;
    const buckets = plan.bucketDays.map((days, b) => {
      const { hours, slivers } = plan.buckets[b]!;
      return breakdown || hours.length + slivers.length > cellsWorthASignature ? days : null;
    });
    const { middle } = plan;
    // A breakdown's days are many cells each; the whole question's are worth a signature only
    // where the buckets' are read anyway.
    const totals =
      middle !== null &&
      plan.totals.days.length >= daysWorthASignature &&
      (breakdown || buckets.some((d) => d !== null))
        ? ([daysOf(middle.from), daysOf(middle.end - 1)] as [number, number])
        : null;
    this.signatureDays = [...buckets, totals];
    this.selectionKeys = selections.map((s) => JSON.stringify(['bucket', project, s]));
  }

  /** The cells and slivers to read: the totals', and those of every bucket not known. */
  choose(
    signatures: readonly BucketSignature[],
    raw: readonly RawGroup[],
  ): { days: number[]; hours: number[]; sliverIndexes: number[] } {
    const { plan } = this;
    const bucketCount = plan.buckets.length;
    if (plan.boundaries.length > 0) for (const r of raw) this.withRaw.add(rawBucket(plan, r));
    this.signatures = new Map(signatures.map((s) => [s.bucket, s.signature]));
    this.selections.forEach((_, s) => this.known.set(s, new Map()));
    for (let b = 0; b < bucketCount; b++) {
      if (this.withRaw.has(b) || this.signatureDays[b] === null) {
        this.detail.add(b);
        continue;
      }
      const signature = this.signatures.get(b);
      // No day cell: nothing of the bucket is absorbed, and it holds no raw rows.
      if (signature === undefined) continue;
      const found = this.selections.map((_, s) =>
        this.memo.recall<ValueCounts>(this.bucketKey(s, b, signature)),
      );
      if (found.some((f) => f === undefined)) this.detail.add(b);
      else found.forEach((f, s) => this.known.get(s)!.set(b, f!));
    }
    if (this.signatureDays[bucketCount] !== null) {
      const signature = this.signatures.get(bucketCount);
      this.selections.forEach((_, s) => {
        const kept =
          signature === undefined
            ? new Map<string | null, KnownCells>()
            : this.memo.recall<ReadonlyMap<string | null, KnownCells>>(this.cellsKey(s, signature));
        if (kept) this.knownCells.set(s, kept);
      });
    }
    const totalsKnown = this.knownCells.size === this.selections.length;
    const days = new Set(totalsKnown ? [] : plan.totals.days);
    const hours = new Set(totalsKnown ? [] : plan.totals.hours);
    const sliverIndexes: number[] = [];
    for (const b of this.detail) {
      const pieces = plan.buckets[b]!;
      for (const d of pieces.days) days.add(d);
      for (const h of pieces.hours) hours.add(h);
      for (const i of pieces.slivers) sliverIndexes.push(i);
    }
    return { days: [...days], hours: [...hours], sliverIndexes };
  }

  /** A bucket not counted in full this time: its counts for the value (none: zeros). */
  knownCounts(selection: number, bucket: number, value: string | null): Counts | undefined {
    return this.known.get(selection)?.get(bucket)?.get(value);
  }

  /** The buckets just counted from cells alone, every value's counts, remembered. */
  rememberBuckets(
    selection: number,
    tallies: ReadonlyMap<string | null, { readonly buckets: readonly (Tally | undefined)[] }>,
    countsOf: (tally: Tally) => Counts,
  ): void {
    for (const b of this.detail) {
      const signature = this.signatures.get(b);
      if (this.withRaw.has(b) || this.signatureDays[b] === null || signature === undefined)
        continue;
      const counts = new Map<string | null, Counts>();
      let bytes = 0;
      for (const [value, t] of tallies) {
        const tally = t.buckets[b];
        if (tally === undefined) continue;
        counts.set(value, countsOf(tally));
        bytes += bytesPerCounts + (value?.length ?? 0) * 2;
      }
      const key = this.bucketKey(selection, b, signature);
      this.memo.remember(key, counts, bytes + key.length);
    }
  }

  /** The union of the totals' cells per value, when known for this selection. */
  knownTotalCells(selection: number): ReadonlyMap<string | null, KnownCells> | undefined {
    return this.knownCells.get(selection);
  }

  /** The cells just counted for the totals, as one union per value, remembered. */
  rememberTotalCells(
    selection: number,
    totalCells: ReadonlyMap<string | null, { eventCount: number; users: UserSet[] }>,
  ): void {
    const signature = this.signatures.get(this.plan.buckets.length);
    if (signature === undefined || this.knownCells.has(selection)) return;
    const key = this.cellsKey(selection, signature);
    const unions = new Map<string | null, KnownCells>();
    let bytes = key.length;
    for (const [value, cells] of totalCells) {
      let users = bitmapWith(null, []);
      for (const u of cells.users) users = orUserSetInto(users, u);
      unions.set(value, {
        users,
        eventCount: cells.eventCount,
        identity: key + JSON.stringify(value),
      });
      bytes += users.byteLength + bytesPerCounts;
    }
    this.memo.remember(key, unions, bytes);
  }

  private cellsKey(selection: number, signature: string): string {
    const { middle } = this.plan;
    return JSON.stringify([
      'totals',
      this.project,
      this.selections[selection],
      middle?.from,
      middle?.end,
      signature,
    ]);
  }

  private bucketKey(selection: number, bucket: number, signature: string): string {
    const { boundaries } = this.plan;
    // The bucket as far as the window covers it: interior buckets are the same for any window.
    const from = Math.max(boundaries[bucket]!, this.window.from);
    const end = Math.min(boundaries[bucket + 1]!, this.window.to + 1);
    return `${this.selectionKeys[selection]!}${from},${end},${signature}`;
  }
}
