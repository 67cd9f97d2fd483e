// Events and exact unique users of one bucket (or total, or breakdown value), gathered from cells'
// user sets, raw rows' user numbers and users the rollup has not seen yet, and counted once.
import {
  bitmapWith,
  orUserSetInto,
  popcount,
  userSetHas,
  userSetSize,
  type UserSet,
} from '../sql/user-set-format.js';

// Sizes of rollup user sets, which are never mutated: a kept cell's set is the same object on every
// request, so its popcount is computed once per cell version, not once per answer.
const cellSizes = new WeakMap<UserSet, number>();
function cellSize(users: UserSet): number {
  let n = cellSizes.get(users);
  if (n === undefined) cellSizes.set(users, (n = userSetSize(users)));
  return n;
}

export interface Counts {
  count: number;
  unique_users: number;
}

export class Tally {
  count = 0;
  private readonly sets: UserSet[] = [];
  private readonly userInts: number[] = [];
  /** Raw users the rollup's dictionary has not seen yet: no bit, so kept by name. */
  private readonly unseen = new Set<string>();

  addCell(eventCount: number, users: UserSet): void {
    this.count += eventCount;
    this.sets.push(users);
  }

  addRaw(eventCount: number, userInt: number | null, userId: string): void {
    this.count += eventCount;
    if (userInt === null) this.unseen.add(userId);
    else this.userInts.push(userInt);
  }

  merge(other: Tally): void {
    this.count += other.count;
    for (const s of other.sets) this.sets.push(s);
    for (const i of other.userInts) this.userInts.push(i);
    for (const u of other.unseen) this.unseen.add(u);
  }

  counts(): Counts {
    return { count: this.count, unique_users: this.uniqueUsers() };
  }

  private uniqueUsers(): number {
    if (this.count === 0) return 0;
    // One cell and a few raw users (a whole day of a window): counted from the cell as it is.
    if (this.sets.length === 1) {
      const cell = this.sets[0]!;
      const extra = new Set(this.userInts.filter((i) => !userSetHas(cell, i)));
      return cellSize(cell) + extra.size + this.unseen.size;
    }
    let users = bitmapWith(null, this.userInts);
    for (const s of this.sets) users = orUserSetInto(users, s);
    return popcount(users) + this.unseen.size;
  }
}
