// What ingest holds, in events and in bytes: bodies being read, requests waiting for a batch, and
// requests on a writer thread; and whether one more request fits (QUEUE_MAX_SIZE, QUEUE_MAX_BYTES).
import { problem, type Problem } from '../errors.js';
import { IntrusiveList } from '../intrusive-list.js';
import type { Submission } from './submission.js';

export interface QueueLimits {
  readonly queueMaxSize: number;
  readonly queueMaxBytes: number;
  readonly batchMaxSize: number;
  readonly batchMaxBytes: number;
  readonly retryAfterSeconds: number;
}

export class IngestQueue {
  /** Requests waiting for a batch, oldest first. */
  readonly pending: Submission[] = [];
  /** Events waiting for a batch. */
  pendingEvents = 0;
  private pendingBytes = 0;
  private readingBytes = 0;
  private inFlightEvents = 0;
  private inFlightBytes = 0;
  /** Durable requests on a writer thread, for the deadline sweep. */
  private readonly inFlight = new IntrusiveList<Submission>();

  constructor(private readonly limits: QueueLimits) {}

  /** Events accepted but not yet committed. */
  get depth(): number {
    return this.pendingEvents + this.inFlightEvents;
  }

  /** Bytes held for ingest: bodies being read, and request text accepted but not yet committed
   *  (see ValidatedRequest). */
  get depthBytes(): number {
    return this.readingBytes + this.pendingBytes + this.inFlightBytes;
  }

  /** Holds queue room for a body while it is read (its Content-Length): otherwise every open
   *  connection could hold a MAX_BODY_BYTES buffer beyond QUEUE_MAX_BYTES. Returns the release,
   *  which may be called more than once. */
  reserveBytes(bytes: number): () => void {
    this.readingBytes += bytes;
    let held = true;
    return () => {
      if (held) this.readingBytes -= bytes;
      held = false;
    };
  }

  /** The 503 for a request that does not fit, or undefined. */
  fullProblem(events: number, bytes: number): Problem | undefined {
    const { queueMaxSize, queueMaxBytes, retryAfterSeconds } = this.limits;
    if (this.depth + events > queueMaxSize)
      return problem(
        'queue_full',
        `The ingestion queue holds ${this.depth} of ${queueMaxSize} events (QUEUE_MAX_SIZE).`,
        { retryAfterSeconds },
      );
    if (this.depthBytes + bytes > queueMaxBytes)
      return problem(
        'queue_full',
        `The ingestion queue holds ${this.depthBytes} of ${queueMaxBytes} bytes (QUEUE_MAX_BYTES); this request needs ${bytes}.`,
        { retryAfterSeconds },
      );
    return undefined;
  }

  add(s: Submission): void {
    this.pending.push(s);
    this.pendingEvents += s.request.eventCount;
    this.pendingBytes += s.request.json.length;
  }

  /** The oldest waiting requests that fit in one batch (BATCH_MAX_SIZE, BATCH_MAX_BYTES), now on
   *  a writer thread until released. */
  takeBatch(): Submission[] {
    const { batchMaxSize, batchMaxBytes } = this.limits;
    const batch: Submission[] = [];
    let size = 0;
    let bytes = 0;
    let taken = 0;
    for (; taken < this.pending.length; taken++) {
      const next = this.pending[taken]!;
      const nextBytes = next.request.json.length;
      if (
        batch.length > 0 &&
        (size + next.request.eventCount > batchMaxSize || bytes + nextBytes > batchMaxBytes)
      )
        break;
      this.pendingEvents -= next.request.eventCount;
      this.pendingBytes -= nextBytes;
      // Already answered 503 (deadline passed while waiting): never sent, so never stored.
      if (next.durable && next.settled) continue;
      batch.push(next);
      size += next.request.eventCount;
      bytes += nextBytes;
      this.inFlightEvents += next.request.eventCount;
      this.inFlightBytes += nextBytes;
      if (next.durable) this.inFlight.add(next);
    }
    this.pending.splice(0, taken); // once per batch: shift() per item is quadratic on a full queue
    return batch;
  }

  /** A request taken by takeBatch is off its writer thread; call once per request. */
  release(s: Submission): void {
    this.inFlightEvents -= s.request.eventCount;
    this.inFlightBytes -= s.request.json.length;
    this.inFlight.delete(s);
  }

  /** Calls `answer` for each durable request past its deadline, waiting or on a writer thread,
   *  not yet answered. */
  forEachOverdue(now: number, answer: (s: Submission) => void): void {
    const overdue = (s: Submission) => s.durable && !s.settled && now >= s.deadline;
    for (const s of this.pending) if (overdue(s)) answer(s);
    this.inFlight.forEach((s) => {
      if (overdue(s)) answer(s);
    });
  }
}
