// GET /metrics parameters → a normalized window (or a problem), and rollup + raw material → the
// seed's response shape. Pure functions: the HTTP route and the cache key both use them.
import { problem, type FieldErrors, type Problem } from '../errors.js';
import type { MetricsMaterial, MetricsWindow } from '../sql/read-metrics.js';
import {
  bitmapWith,
  orInto,
  orUserSetInto,
  popcount,
  userSetHas,
  userSetSize,
  type UserSet,
} from './user-bitmap.js';

export interface MetricsQuery extends MetricsWindow {
  readonly groupByDay: boolean;
}

export interface MetricsAnswer {
  readonly totals: { count: number; unique_users: number };
  readonly buckets?: { bucket_start: number; count: number; unique_users: number }[];
}

const metricsParameters = ['event_name', 'channel', 'from', 'to', 'group_by'] as const;
const secondsPerDay = 86_400;
const maxTimestamp = 253_402_300_799;

/** Defaults as the seed: no window → the 24 h ending now; only from → up to now; only to → the
 *  24 h before to. Both bounds inclusive. */
export function parseMetricsQuery(
  rawQuery: string,
  nowSeconds: number,
  maxWindowDays: number,
  allowed: readonly string[] = metricsParameters,
): { ok: true; query: MetricsQuery } | { ok: false; problem: Problem } {
  const allowedParameters = new Set(allowed);
  const params = new URLSearchParams(rawQuery);
  const errors: FieldErrors = Object.create(null) as FieldErrors;
  const add = (field: string, message: string) => (errors[field] ??= []).push(message);
  for (const name of new Set(params.keys())) {
    if (!allowedParameters.has(name)) add(name, 'is not a known parameter');
    else if (params.getAll(name).length > 1) add(name, 'must be given once');
  }
  const epoch = (name: string): number | undefined => {
    const raw = params.get(name);
    if (raw === null) return undefined;
    if (!/^\d{1,12}$/.test(raw) || Number(raw) > maxTimestamp) {
      add(name, `must be a non-negative integer of epoch seconds ≤ ${maxTimestamp}`);
      return undefined;
    }
    return Number(raw);
  };
  const text = (name: string): string | null => {
    const raw = params.get(name);
    if (raw === null) return null;
    if (raw.length === 0 || raw.length > 128 || raw.includes('\u0000'))
      add(name, 'must be 1 to 128 characters');
    return raw;
  };
  const fromParam = epoch('from');
  const toParam = epoch('to');
  const eventName = text('event_name');
  const channel = text('channel');
  const groupBy = params.get('group_by');
  if (groupBy !== null && groupBy !== 'day') add('group_by', 'must be "day"');

  const to = toParam ?? (fromParam !== undefined ? Math.max(nowSeconds, fromParam) : nowSeconds);
  const from = fromParam ?? Math.max(0, to - secondsPerDay);
  if (Object.keys(errors).length === 0) {
    if (from > to) add('from', 'must not be later than to');
    else if (to - from + 1 > maxWindowDays * secondsPerDay) {
      add('to', `the window must not exceed ${maxWindowDays} days (METRICS_MAX_WINDOW_DAYS)`);
    }
  }
  if (Object.keys(errors).length > 0) {
    return {
      ok: false,
      problem: problem(
        'invalid_query',
        `Invalid parameter${Object.keys(errors).length > 1 ? 's' : ''}: ${Object.keys(errors).join(', ')}.`,
        {
          errors,
        },
      ),
    };
  }
  return { ok: true, query: { from, to, eventName, channel, groupByDay: groupBy === 'day' } };
}

/** The cache key: the same window and filters give the same key whatever the parameter order. */
export function metricsCacheKey(q: MetricsQuery): string {
  return JSON.stringify([q.from, q.to, q.eventName, q.channel, q.groupByDay]);
}

// Sizes of rollup user sets, which are never mutated: a cached cell's set is the same object on
// every request, so a bitmap's popcount is computed once per cell version, not once per answer.
const cellSizes = new WeakMap<UserSet, number>();
function cellSize(users: UserSet): number {
  let n = cellSizes.get(users);
  if (n === undefined) cellSizes.set(users, (n = userSetSize(users)));
  return n;
}

/** Per day: day cell + hour cells + raw counts; users: the union of their users. Totals: the union
 *  over days. A day served by its day cell alone (every whole day of a window) is counted from that
 *  cell's set as it is: no copy, and its size comes from the memo. */
export function answerMetrics(q: MetricsQuery, material: MetricsMaterial): MetricsAnswer {
  interface Day {
    count: number;
    /** The day cell's users (read-only), if any. */
    cell: UserSet | undefined;
    /** Hour cells' users (read-only). */
    hours: UserSet[];
    /** Raw users the rollup's dictionary knows. */
    rawInts: number[];
    /** Raw users the rollup's dictionary has not seen yet: no bit, so kept by name. */
    unseen: Set<string>;
  }
  const days = new Map<number, Day>();
  const dayOf = (day: number): Day => {
    let d = days.get(day);
    if (!d) {
      d = { count: 0, cell: undefined, hours: [], rawInts: [], unseen: new Set() };
      days.set(day, d);
    }
    return d;
  };
  for (const cell of material.cells) {
    const d = dayOf(cell.day);
    d.count += cell.eventCount;
    d.cell = cell.users;
  }
  for (const cell of material.hourCells) {
    const d = dayOf(cell.day);
    d.count += cell.eventCount;
    d.hours.push(cell.users);
  }
  for (const raw of material.rawGroups) {
    const d = dayOf(raw.day);
    d.count += raw.eventCount;
    if (raw.userInt === null) d.unseen.add(raw.userId);
    else d.rawInts.push(raw.userInt);
  }
  let allUsers: Uint8Array = new Uint8Array(0);
  const allUnseen = new Set<string>();
  let total = 0;
  const buckets: { bucket_start: number; count: number; unique_users: number }[] = [];
  for (const day of [...days.keys()].sort((a, b) => a - b)) {
    const d = days.get(day)!;
    if (d.count === 0) continue;
    total += d.count;
    let known: number;
    if (d.cell !== undefined && d.hours.length === 0) {
      const cell = d.cell;
      const extra = new Set(d.rawInts.filter((i) => !userSetHas(cell, i)));
      known = cellSize(cell) + extra.size;
      allUsers = bitmapWith(orUserSetInto(allUsers, cell), extra);
    } else {
      let users = bitmapWith(d.cell ? orUserSetInto(new Uint8Array(0), d.cell) : null, d.rawInts);
      for (const hour of d.hours) users = orUserSetInto(users, hour);
      known = popcount(users);
      allUsers = orInto(allUsers, users);
    }
    for (const u of d.unseen) allUnseen.add(u);
    if (q.groupByDay) {
      buckets.push({
        bucket_start: day * secondsPerDay,
        count: d.count,
        unique_users: known + d.unseen.size,
      });
    }
  }
  const totals = { count: total, unique_users: popcount(allUsers) + allUnseen.size };
  return q.groupByDay ? { totals, buckets } : { totals };
}
