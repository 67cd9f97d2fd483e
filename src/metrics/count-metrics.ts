// Rollup + raw material → the counts GET /metrics answers: events and exact unique users, in total
// and per day. Pure: runs once per uncached answer, on the main thread.
import type { MetricsMaterial } from '../sql/read-metrics.js';
import { secondsPerDay } from '../sql/rollup-spans.js';
import {
  bitmapWith,
  orInto,
  orUserSetInto,
  popcount,
  userSetHas,
  userSetSize,
  type UserSet,
} from '../sql/user-set-format.js';
import type { WindowQuery } from './time-window.js';

export interface MetricsAnswer {
  readonly totals: { count: number; unique_users: number };
  readonly buckets?: { bucket_start: number; count: number; unique_users: number }[];
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
export function countMetrics(q: WindowQuery, material: MetricsMaterial): MetricsAnswer {
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
