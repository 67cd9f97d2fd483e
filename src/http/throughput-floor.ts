// The least rate at which an export's reader must take bytes (EXPORT_MIN_BYTES_PER_SEC), counted
// only while the export waits for that reader: a slow database is not the reader's fault. A
// leaky bucket: each second of waiting costs the floor's worth of bytes, each byte taken earns one
// back, and the balance is capped at one window (EXPORT_THROUGHPUT_WINDOW_MS) of the floor. A
// reader that takes nothing is cut after one window; one taking t bytes/s below the floor f after
// about window × f / (f − t); one at or above the floor never runs dry.

export class ThroughputFloor {
  private readonly capBytes: number;
  private creditBytes: number;

  /** bytesPerSec 0: no floor. */
  constructor(
    private readonly bytesPerSec: number,
    windowMs: number,
  ) {
    this.capBytes = (bytesPerSec * windowMs) / 1000;
    // A full window to start with: the first window is the grace period.
    this.creditBytes = this.capBytes;
  }

  /** How long the export may wait for its reader now before the reader is below the floor. */
  allowedWaitMs(): number {
    if (this.bytesPerSec === 0) return Number.POSITIVE_INFINITY;
    return Math.max(0, (this.creditBytes / this.bytesPerSec) * 1000);
  }

  /** The socket took `bytes` after the export had waited `waitedMs` for it to have room. */
  took(bytes: number, waitedMs: number): void {
    const owed = (waitedMs * this.bytesPerSec) / 1000;
    this.creditBytes = Math.min(this.capBytes, this.creditBytes - owed + bytes);
  }
}
