// A set of objects that come and go at request rate, threaded through the objects themselves.
// Not a Set: a Set replaces its hash table as entries churn through it, and a replaced table that
// V8 has already moved to the old generation still points at every entry it held. Until the next
// full GC, every minor GC then keeps those entries alive, and with them all they reference (a
// request's body, head and closures): a fifth of the uWS thread's allocation under single events
// was copied and promoted that way (docs/benchmarks.md). A list has no table to leave behind: an
// item's links are cleared as it leaves.

/** The links an object carries to be in one IntrusiveList; both undefined while it is in none. */
export interface ListLinks<T> {
  listOlder: T | undefined;
  listNewer: T | undefined;
}

export class IntrusiveList<T extends ListLinks<T>> {
  private newest: T | undefined = undefined;
  private oldestItem: T | undefined = undefined;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** The item added longest ago of those still held. */
  get oldest(): T | undefined {
    return this.oldestItem;
  }

  /** The item must be in no list. */
  add(item: T): void {
    item.listOlder = this.newest;
    item.listNewer = undefined;
    if (this.newest) this.newest.listNewer = item;
    else this.oldestItem = item;
    this.newest = item;
    this.count++;
  }

  /** False when the item was not in this list. */
  delete(item: T): boolean {
    if (item.listOlder === undefined && item.listNewer === undefined && this.newest !== item)
      return false;
    if (item.listNewer) item.listNewer.listOlder = item.listOlder;
    else this.newest = item.listOlder;
    if (item.listOlder) item.listOlder.listNewer = item.listNewer;
    else this.oldestItem = item.listNewer;
    item.listOlder = undefined;
    item.listNewer = undefined;
    this.count--;
    return true;
  }

  /** Newest first. `visit` may delete the item it is given, and no other. */
  forEach(visit: (item: T) => void): void {
    for (let item = this.newest; item !== undefined;) {
      const older: T | undefined = item.listOlder;
      visit(item);
      item = older;
    }
  }
}
