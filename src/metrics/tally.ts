// Events and exact unique users of one bucket (or total, or breakdown value), gathered from cells'
// user sets, raw rows' user numbers and users the rollup has not seen yet, and counted once.
import { createHash } from 'node:crypto';
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

/** Anything made from cells, kept by a key that names what it was made of, charged `bytes`. */
export interface Recollection {
  recall<T>(key: string): T | undefined;
  remember(key: string, value: unknown, bytes: number): void;
}

/** What one remembered Counts is charged beyond its key: the numbers and the entry. */
export const bytesPerCounts = 64;

export class Tally {
  count = 0;
  private readonly sets: UserSet[] = [];
  /** Each set's cell and version, while the tally holds nothing else: what its union is of. */
  private identities: string[] | null = [];
  private readonly userInts: number[] = [];
  /** Raw users the rollup's dictionary has not seen yet: no bit, so kept by name. */
  private readonly unseen = new Set<string>();

  /** identity: the set's cell (or sliver) and version, which name its users for good. */
  addCell(eventCount: number, users: UserSet, identity: string): void {
    this.count += eventCount;
    this.sets.push(users);
    this.identities?.push(identity);
  }

  addRaw(eventCount: number, userInt: number | null, userId: string): void {
    this.identities = null;
    this.count += eventCount;
    if (userInt === null) this.unseen.add(userId);
    else this.userInts.push(userInt);
  }

  merge(other: Tally): void {
    if (this.identities && other.identities) {
      for (const i of other.identities) this.identities.push(i);
    } else this.identities = null;
    this.count += other.count;
    for (const s of other.sets) this.sets.push(s);
    for (const i of other.userInts) this.userInts.push(i);
    for (const u of other.unseen) this.unseen.add(u);
  }

  /** memo: a union of cells alone is counted once per version of its cells, then remembered. */
  counts(memo?: Recollection): Counts {
    if (!memo || this.identities === null || this.sets.length < 2) {
      return { count: this.count, unique_users: this.uniqueUsers() };
    }
    // Sorted: the database returns cells in no set order.
    const of = this.identities.sort().join('\n');
    const key = `count\u0000${createHash('sha1').update(of).digest('base64')}`;
    let counts = memo.recall<Counts>(key);
    if (counts === undefined) {
      counts = { count: this.count, unique_users: this.uniqueUsers() };
      memo.remember(key, counts, bytesPerCounts + key.length);
    }
    return counts;
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
