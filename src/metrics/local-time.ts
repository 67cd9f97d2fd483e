// Local calendar buckets in an IANA time zone, from the ICU data Node ships (Intl): the instants
// where each hour, day, week or month of the zone begins. Pure and bounded: the work follows the
// number of buckets asked for, and a zone's offset changes are found once per zone and year.

export type BucketUnit = 'hour' | 'day' | 'week' | 'month';
export type WeekStart = 'monday' | 'sunday';

export interface BucketRule {
  readonly unit: BucketUnit;
  /** An IANA zone name the server's ICU knows (checked by isKnownTimeZone). */
  readonly tz: string;
  readonly weekStart: WeekStart;
}

const secondsPerHour = 3600;
const secondsPerDay = 86_400;
/** Offsets are sampled this often and bisected where they differ: no zone changes twice a day. */
const sampleSeconds = secondsPerDay;
/** A zone's offset changes are computed per chunk of this many seconds and kept. */
const chunkSeconds = 365 * secondsPerDay;
const maxChunksKept = 4096;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterOf(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(tz, f);
  }
  return f;
}

/** Whether Intl knows the zone. The caller bounds the name's length and characters first. */
export function isKnownTimeZone(tz: string): boolean {
  if (formatters.has(tz)) return true;
  try {
    formatterOf(tz);
    return true;
  } catch {
    return false;
  }
}

/** Seconds the zone's wall clock is ahead of UTC at instant t (epoch seconds). */
function offsetFromIcu(tz: string, t: number): number {
  // format() and a split cost a third of formatToParts(): "7/14/2017, 14:00:00" in en-US, h23.
  const [month, day, year, hour, minute, second] = formatterOf(tz)
    .format(new Date(t * 1000))
    .split(/\D+/)
    .map(Number);
  return Date.UTC(year!, month! - 1, day, hour, minute, second) / 1000 - t;
}

interface Chunk {
  readonly offsetAtStart: number;
  /** Instants where the offset changes inside the chunk, ascending, with the offset from then on. */
  readonly changes: readonly { at: number; offset: number }[];
}

const chunks = new Map<string, Chunk>();

function chunkOf(tz: string, index: number): Chunk {
  const key = `${tz}\u0000${index}`;
  let chunk = chunks.get(key);
  if (chunk) return chunk;
  const start = index * chunkSeconds;
  const changes: { at: number; offset: number }[] = [];
  const offsetAtStart = offsetFromIcu(tz, start);
  let before = offsetAtStart;
  for (let t = start; t < start + chunkSeconds; t += sampleSeconds) {
    const next = Math.min(t + sampleSeconds, start + chunkSeconds);
    const after = offsetFromIcu(tz, next);
    if (after === before) continue;
    // The first second with the new offset: offset(lo) = before, offset(hi) ≠ before.
    let lo = t;
    let hi = next;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (offsetFromIcu(tz, mid) === before) lo = mid;
      else hi = mid;
    }
    // A change at the next chunk's first second is kept here: each change is in exactly one list.
    changes.push({ at: hi, offset: offsetFromIcu(tz, hi) });
    before = after;
  }
  chunk = { offsetAtStart, changes };
  if (chunks.size >= maxChunksKept) chunks.delete(chunks.keys().next().value!);
  chunks.set(key, chunk);
  return chunk;
}

/** The zone's offset at t and an instant it holds until: the next change, or a chunk boundary. */
function offsetSpan(tz: string, t: number): { offset: number; until: number } {
  if (tz === 'UTC') return { offset: 0, until: Infinity };
  const index = Math.floor(t / chunkSeconds);
  const chunk = chunkOf(tz, index);
  let offset = chunk.offsetAtStart;
  for (const change of chunk.changes) {
    if (change.at > t) return { offset, until: change.at };
    offset = change.offset;
  }
  // No change in the next chunk either: the offset holds at least until the one after begins.
  return { offset, until: chunkOf(tz, index + 1).changes[0]?.at ?? (index + 2) * chunkSeconds };
}

/** The start of the unit containing a wall-clock time (seconds on the zone's clock), and the next. */
function wallUnit(rule: BucketRule, wall: number): { start: number; next: number } {
  switch (rule.unit) {
    case 'hour': {
      const start = Math.floor(wall / secondsPerHour) * secondsPerHour;
      return { start, next: start + secondsPerHour };
    }
    case 'day': {
      const start = Math.floor(wall / secondsPerDay) * secondsPerDay;
      return { start, next: start + secondsPerDay };
    }
    case 'week': {
      const day = Math.floor(wall / secondsPerDay);
      // 1970-01-01 was a Thursday: 3 days after a Monday, 4 after a Sunday.
      const sinceStart = (((day + (rule.weekStart === 'monday' ? 3 : 4)) % 7) + 7) % 7;
      const start = (day - sinceStart) * secondsPerDay;
      return { start, next: start + 7 * secondsPerDay };
    }
    case 'month': {
      const d = new Date(wall * 1000);
      const y = d.getUTCFullYear();
      const m = d.getUTCMonth();
      return { start: Date.UTC(y, m, 1) / 1000, next: Date.UTC(y, m + 1, 1) / 1000 };
    }
  }
}

/** What identifies the bucket of instant t: its wall-clock unit, and for hours the offset too. */
function keyAt(rule: BucketRule, t: number): string {
  const { offset } = offsetSpan(rule.tz, t);
  const unit = wallUnit(rule, t + offset).start;
  return rule.unit === 'hour' ? `${unit}/${offset}` : String(unit);
}

/** The first instant of the bucket that contains t. */
function bucketStartOf(rule: BucketRule, t: number): number {
  let at = t;
  for (;;) {
    const { offset } = offsetSpan(rule.tz, at);
    const candidate = wallUnit(rule, at + offset).start - offset;
    // Constant offset back to the candidate: the wall clock ran without a jump, so it is the start.
    const segmentStart = previousChange(rule.tz, at, candidate);
    if (segmentStart === undefined) return candidate;
    // The offset changed between the candidate and t: the bucket began at the change unless the
    // instant before it still has the same key.
    if (keyAt(rule, segmentStart - 1) !== keyAt(rule, at)) return segmentStart;
    at = segmentStart - 1;
  }
}

/** The latest offset change in (after, at], if any. */
function previousChange(tz: string, at: number, after: number): number | undefined {
  if (tz === 'UTC') return undefined;
  let found: number | undefined;
  // A change at a chunk's first second is listed in the chunk before.
  const first = Math.floor(after / chunkSeconds) - 1;
  for (let index = first; index <= Math.floor(at / chunkSeconds); index++) {
    for (const c of chunkOf(tz, index).changes) if (c.at > after && c.at <= at) found = c.at;
  }
  return found;
}

/**
 * The boundaries of every bucket overlapping [from, end): b[0] ≤ from < b[1] < … < b[n] ≥ end,
 * bucket i being [b[i], b[i+1]). undefined when there would be more than maxBuckets.
 */
export function bucketBoundaries(
  rule: BucketRule,
  from: number,
  end: number,
  maxBuckets: number,
): number[] | undefined {
  const boundaries = [bucketStartOf(rule, from)];
  let at = boundaries[0]!;
  let span = offsetSpan(rule.tz, at);
  while (at < end) {
    if (boundaries.length > maxBuckets) return undefined;
    if (at >= span.until) span = offsetSpan(rule.tz, at);
    let next = wallUnit(rule, at + span.offset).next - span.offset;
    // The offset changes first: a new bucket there if the key moves, else walk on past it.
    for (let change = span.until; next >= change;) {
      if (keyAt(rule, change) !== keyAt(rule, change - 1)) {
        next = change;
        break;
      }
      const after = offsetSpan(rule.tz, change);
      next = wallUnit(rule, change + after.offset).next - after.offset;
      change = after.until;
    }
    boundaries.push(next);
    at = next;
  }
  return boundaries;
}
