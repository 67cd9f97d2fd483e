// Decoded user sets of rollup cells and hour slivers (sql/read-cells.ts says why and how they are
// versioned), the unique users of unions of them, and whole buckets' counts (bucket-memo.ts), kept
// between requests in at most maxBytes, least recently used out first.
import type { CachedUsers, CellStore } from '../sql/read-metrics.js';
import type { Recollection } from './tally.js';

interface Entry extends CachedUsers {
  readonly version: string;
  readonly bytes: number;
  /** Anything else remembered under the key; versioned by the key itself. */
  readonly remembered?: unknown;
}

const noUsers = new Uint8Array(0);

export class CellBitmapCache implements CellStore, Recollection {
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

  recall<T>(key: string): T | undefined {
    const entry = this.entries.get(key);
    if (entry?.remembered === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.remembered as T;
  }

  remember(key: string, value: unknown, bytes: number): void {
    this.keep(key, { version: '', users: noUsers, eventCount: 0, remembered: value, bytes });
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
