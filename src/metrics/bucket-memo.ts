// Counts of whole buckets already made, by the signature of their cells. A local day off the UTC
// midnight is 24 hour cells; reading and OR-ing them for each of 90 buckets on every uncached
// answer cost more than everything else in it, yet a past bucket changes only when late events
// reach it. So the reader first asks the database for each bucket's signature (the row versions
// of the UTC day cells it touches, hashed: any event absorbed into the bucket rewrites one), and
// only buckets whose counts are not known at that signature, or that hold raw rows, are read and
// counted in full.
import type {
  BucketSignature,
  CachedUsers,
  CellSelection,
  CellStore,
  RawGroup,
} from '../sql/read-metrics.js';
import { rawBucket, type MetricsPlan } from './metrics-plan.js';
import { bitmapWith, orUserSetInto, type UserSet } from '../sql/user-set-format.js';
import type { CountMemo, Counts } from './tally.js';

/** The window's whole days of one value, as one union, named for the count memo by its key. */
export type KnownDays = CachedUsers & { readonly identity: string };

/** Fewer whole days than this are read as fast as their signature. */
const daysWorthASignature = 8;

export class BucketMemo {
  /** Buckets counted from their cells, slivers and raw rows this time. */
  readonly detail = new Set<number>();
  /** Buckets holding raw rows (window edges, the tail): their counts are never remembered. */
  private readonly withRaw = new Set<number>();
  /** Per selection: bucket → value → signature. */
  private signatures: Map<number, Map<string | null, string>>[] = [];
  /** Counts found for the other buckets, held for the count that follows. */
  private readonly known = new Map<string, Counts>();
  /** Per selection whose whole days are known: value → their union. */
  private readonly knownDays = new Map<number, Map<string | null, KnownDays>>();

  constructor(
    private readonly memo: CountMemo & CellStore,
    private readonly plan: MetricsPlan,
    private readonly selections: readonly CellSelection[],
    private readonly project: number,
    private readonly window: { readonly from: number; readonly to: number },
  ) {}

  /** The cells and slivers to read: the totals', and those of every bucket not known. */
  choose(
    signatures: readonly (readonly BucketSignature[])[],
    raw: readonly RawGroup[],
  ): { days: number[]; hours: number[]; sliverIndexes: number[] } {
    const { plan } = this;
    if (plan.boundaries.length > 0) {
      for (const r of raw) {
        this.withRaw.add(rawBucket(plan, r));
      }
    }
    for (const b of this.withRaw) this.detail.add(b);
    plan.bucketDays.forEach((days, b) => {
      if (days === null) this.detail.add(b);
    });
    this.signatures = signatures.map((list) => {
      const byBucket = new Map<number, Map<string | null, string>>();
      for (const s of list) {
        const values = byBucket.get(s.bucket) ?? new Map<string | null, string>();
        byBucket.set(s.bucket, values.set(s.value, s.signature));
      }
      return byBucket;
    });
    this.signatures.forEach((byBucket, s) => {
      for (const [bucket, values] of byBucket) {
        if (this.detail.has(bucket) || bucket === this.plan.buckets.length) continue;
        for (const [value, signature] of values) {
          const counts = this.memo.getCounts(this.keyOf(s, bucket, value, signature));
          if (counts === undefined) this.detail.add(bucket);
          else this.known.set(knownKey(s, bucket, value), counts);
        }
      }
    });
    const totals = this.plan.buckets.length;
    this.signatures.forEach((byBucket, s) => {
      if (this.totalDaysRange === null) return;
      const kept = new Map<string | null, KnownDays>();
      for (const [value, signature] of byBucket.get(totals) ?? []) {
        const key = this.daysKey(s, value, signature);
        const entry = this.memo.get(key, '');
        if (entry === undefined) return;
        kept.set(value, { ...entry, identity: key });
      }
      this.knownDays.set(s, kept);
    });
    const allDaysKnown = this.knownDays.size === this.selections.length;
    const days = new Set(allDaysKnown ? [] : plan.totals.days);
    const hours = new Set(plan.totals.hours);
    const sliverIndexes: number[] = [];
    for (const b of this.detail) {
      const pieces = plan.buckets[b]!;
      for (const d of pieces.days) days.add(d);
      for (const h of pieces.hours) hours.add(h);
      for (const i of pieces.slivers) sliverIndexes.push(i);
    }
    return { days: [...days], hours: [...hours], sliverIndexes };
  }

  /** A bucket not counted in full this time: its counts for the value (zeros: no cells). */
  knownCounts(selection: number, bucket: number, value: string | null): Counts | undefined {
    return this.known.get(knownKey(selection, bucket, value));
  }

  /** Counts just made for a bucket, remembered when they came from cells alone. */
  remember(selection: number, bucket: number, value: string | null, counts: Counts): void {
    if (this.withRaw.has(bucket)) return;
    const signature = this.signatures[selection]?.get(bucket)?.get(value);
    if (signature !== undefined)
      this.memo.setCounts(this.keyOf(selection, bucket, value, signature), counts);
  }

  /** The signature ranges to ask for: one per bucket, then the window's whole days (the totals). */
  get signatureDays(): ([number, number] | null)[] {
    return [...this.plan.bucketDays, this.totalDaysRange];
  }

  /** Only a breakdown's totals are worth a signature: twenty names are 1,800 day cells over 90
   *  days, where the whole question's 90 cells cost no more to read than their signature. */
  private get totalDaysRange(): [number, number] | null {
    const { days } = this.plan.totals;
    if (this.selections.length < 2 || days.length < daysWorthASignature) return null;
    return [days[0]!, days.at(-1)!];
  }

  /** The union of the window's whole days per value, when known for this selection. */
  knownTotalDays(selection: number): ReadonlyMap<string | null, KnownDays> | undefined {
    return this.knownDays.get(selection);
  }

  /** The day cells just counted for the totals, as one union per value, remembered. */
  rememberTotalDays(
    selection: number,
    dayCells: ReadonlyMap<string | null, { eventCount: number; users: UserSet[] }>,
  ): void {
    if (this.totalDaysRange === null || this.knownDays.has(selection)) return;
    const signatures = this.signatures[selection]?.get(this.plan.buckets.length);
    for (const [value, signature] of signatures ?? []) {
      const cells = dayCells.get(value);
      if (cells === undefined) continue;
      let users = bitmapWith(null, []);
      for (const u of cells.users) users = orUserSetInto(users, u);
      this.memo.set(this.daysKey(selection, value, signature), '', {
        users,
        eventCount: cells.eventCount,
      });
    }
  }

  private daysKey(selection: number, value: string | null, signature: string): string {
    return JSON.stringify([
      'days',
      this.project,
      this.selections[selection],
      value,
      this.totalDaysRange,
      signature,
    ]);
  }

  private keyOf(
    selection: number,
    bucket: number,
    value: string | null,
    signature: string,
  ): string {
    const { boundaries } = this.plan;
    // The bucket as far as the window covers it: interior buckets are the same for any window.
    return JSON.stringify([
      'bucket',
      this.project,
      this.selections[selection],
      value,
      Math.max(boundaries[bucket]!, this.window.from),
      Math.min(boundaries[bucket + 1]!, this.window.to + 1),
      signature,
    ]);
  }
}

/** JSON, not a template: a channel named "null" is not the value null. */
const knownKey = (selection: number, bucket: number, value: string | null) =>
  JSON.stringify([selection, bucket, value]);
