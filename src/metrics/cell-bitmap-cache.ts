// Decoded user sets of rollup cells and hour slivers (sql/read-cells.ts says why and how they are
// versioned), and the unique users of unions of them, kept between requests in at most maxBytes,
// least recently used out first.
import type { CachedUsers, CellStore } from '../sql/read-metrics.js';
import type { CountMemo } from './tally.js';

interface Entry extends CachedUsers {
  readonly version: string;
  readonly bytes: number;
}

/** What a remembered count is charged: its hashed key, the number and the entry. */
const countBytes = 64;
const noUsers = new Uint8Array(0);

export class CellBitmapCache implements CellStore, CountMemo {
  // A Map iterates in insertion order; re-inserting on every hit makes the first key the least
  // recently used.
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: string, version: string): CachedUsers | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined || entry.version !== version) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry;
  }

  /** users must be the caller's own (decodeUserSet makes it so), not a view of a network buffer. */
  set(key: string, version: string, { users, eventCount }: CachedUsers): void {
    this.keep(key, { version, users, eventCount, bytes: users.byteLength });
  }

  getCount(key: string): number | undefined {
    return this.get(key, '')?.eventCount;
  }

  setCount(key: string, count: number): void {
    this.keep(key, { version: '', users: noUsers, eventCount: count, bytes: countBytes });
  }

  private keep(key: string, entry: Entry): void {
    this.delete(key);
    if (entry.bytes > this.maxBytes) return;
    this.entries.set(key, entry);
    this.bytes += entry.bytes;
    for (const [oldest] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.delete(oldest);
    }
  }

  /** Bytes held, for /internal/metrics. */
  get size(): number {
    return this.bytes;
  }

  private delete(key: string): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }
}
