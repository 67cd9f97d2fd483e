// Decoded user sets of rollup cells (bitmaps or user lists, sql/user-set-format.ts), kept between
// requests.
// A 90-day answer needs ~90 cells of up to 12.5 KB each at 100k users; fetching and decoding them
// on every uncached request cost most of its time on the main thread, yet a past day's cell changes
// only when late events arrive for it. Each entry carries the row version it was read at (the
// cell's xmin), and the reader fetches user sets only for cells whose version moved, all within its
// one snapshot — so a cached set is never served for a cell that changed.
import type { CellBitmapStore } from '../sql/read-metrics.js';
import type { UserSet } from '../sql/user-set-format.js';

interface Entry {
  readonly version: string;
  readonly users: UserSet;
}

export class CellBitmapCache implements CellBitmapStore {
  // A Map iterates in insertion order; re-inserting on every hit makes the first key the least
  // recently used.
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: string, version: string): UserSet | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined || entry.version !== version) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.users;
  }

  /** users must be the caller's own (decodeUserSet makes it so), not a view of a network buffer. */
  set(key: string, version: string, users: UserSet): void {
    this.delete(key);
    if (users.byteLength > this.maxBytes) return;
    this.entries.set(key, { version, users });
    this.bytes += users.byteLength;
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
    this.bytes -= entry.users.byteLength;
  }
}
