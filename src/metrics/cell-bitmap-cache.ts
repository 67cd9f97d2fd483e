// Decoded user bitmaps of rollup cells, kept between requests. A 90-day answer needs ~90 cells of
// up to 12.5 KB each at 100k users; fetching and hex-decoding them on every uncached request cost
// most of its time on the main thread, yet a past day's cell changes only when late events arrive
// for it. Each entry carries the row version it was read at (the cell's xmin), and the reader
// fetches bitmaps only for cells whose version moved, all within its one snapshot — so a cached
// bitmap is never served for a cell that changed.
import type { CellBitmapStore } from '../sql/read-metrics.js';

interface Entry {
  readonly version: string;
  readonly users: Uint8Array;
}

export class CellBitmapCache implements CellBitmapStore {
  // A Map iterates in insertion order; re-inserting on every hit makes the first key the least
  // recently used.
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: string, version: string): Uint8Array | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined || entry.version !== version) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.users;
  }

  set(key: string, version: string, users: Uint8Array): void {
    this.delete(key);
    if (users.length > this.maxBytes) return;
    // A copy in its own 8-byte-padded buffer: word-aligned for the OR, and it does not pin the
    // network buffer the row arrived in.
    const copy = new Uint8Array((users.length + 7) & ~7);
    copy.set(users);
    this.entries.set(key, { version, users: copy });
    this.bytes += copy.length;
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
    this.bytes -= entry.users.length;
  }
}
