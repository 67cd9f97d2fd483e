// Group commit. Requests append their validated events; a batch goes to a writer thread as soon as
// one is free, and whatever arrives while every writer is busy becomes the next, larger batch.
// BATCH_MAX_WAIT_MS is a ceiling, never a fixed wait: past it, waiting events are queued to Piscina
// even though every writer is busy. A request's events always travel in one batch and so commit
// in one transaction. The queue and each batch are bounded in events and in bytes of request text.
import type { Logger } from 'pino';
import type { IngestAck } from '../config.js';
import { problem, shuttingDownProblem, type Problem } from '../errors.js';
import { acksBeforeCommit } from '../faults/fault-injection.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import { EventOutcome, type InsertBatchResult } from '../workers/insert-batch-messages.js';
import type { WriterPool } from './writer-pool.js';

export type SubmitResult =
  | { readonly kind: 'stored'; readonly inserted: number; readonly duplicates: number }
  | { readonly kind: 'queued' }
  | { readonly kind: 'failed'; readonly problem: Problem };

export interface BatcherOptions {
  readonly queueMaxSize: number;
  readonly queueMaxBytes: number;
  readonly batchMaxSize: number;
  readonly batchMaxBytes: number;
  readonly batchMaxWaitMs: number;
  /** Durable requests not committed by then get 503 (their outcome is in doubt). */
  readonly ingestTimeoutMs: number;
  readonly retryAfterSeconds: number;
}

/** One validated request: its body as JSON (an event, or {"events":[…]}), and its size. A large
 *  body stays the UTF-8 bytes it arrived as, outside the JS heap; the rest are text. Its bytes are
 *  counted as `json.length`: free to read, and never more than the UTF-8 body it came from. A
 *  string with a character past U+00FF is stored at two bytes per character, so memory is at most
 *  twice it. */
export interface ValidatedRequest {
  readonly json: string | Uint8Array;
  readonly eventCount: number;
}

interface Submission {
  readonly request: ValidatedRequest;
  readonly durable: boolean;
  readonly deadline: number;
  settled: boolean;
  readonly settle: (result: SubmitResult) => void;
  /** Writer threads that died while this request was on them. */
  crashes: number;
}

/** A request that was on this many crashed writer threads, the last one alone, is given up: it is
 *  poison, not a blip. */
const maxCrashesPerRequest = 3;
const retryBackoffMs = { first: 50, max: 2000 };
/** Waiting events that justify another concurrent batch (see canStartBatch): one bulk request. */
const parallelBatchMinEvents = 100;

export class Batcher {
  private pending: Submission[] = [];
  private pendingEvents = 0;
  private pendingBytes = 0;
  private readingBytes = 0;
  private inFlightEvents = 0;
  private inFlightBytes = 0;
  private runningBatches = 0;
  private readonly inFlight = new Set<Submission>();
  private flushScheduled = false;
  private maxWaitTimer: NodeJS.Timeout | undefined;
  private readonly deadlineSweep: NodeJS.Timeout;
  private databaseAvailable = true;
  /** The last batch attempt that failed because the database refused or could not be reached,
   *  cleared by the next batch that commits. The readiness probe's own connection can be fine
   *  while every writer meets 53300 too_many_connections: /readyz reports this too. */
  private failedWrite: { readonly atMs: number; readonly sqlstate: string } | undefined;
  private closing = false;
  private giveUpAt = Infinity;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly writers: WriterPool,
    private readonly options: BatcherOptions,
    private readonly log: Logger,
    private readonly telemetry: Telemetry,
  ) {
    // One sweep for all requests instead of a timer per request on the hot path.
    this.deadlineSweep = setInterval(
      () => this.expireOverdue(),
      Math.min(250, options.ingestTimeoutMs / 4),
    );
    this.deadlineSweep.unref();
  }

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

  /** The 503 for a request that does not fit, or undefined. The route asks before reading a body
   *  (with its Content-Length), so a refused body is never parsed; submit asks again. */
  queueFullProblem(events: number, bytes: number): Problem | undefined {
    const { queueMaxSize, queueMaxBytes, retryAfterSeconds } = this.options;
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

  /** A write failure younger than `withinMs` with no commit since, for /readyz. */
  recentWriteFailure(withinMs: number): { readonly sqlstate: string } | undefined {
    const failure = this.failedWrite;
    return failure && Date.now() - failure.atMs < withinMs ? failure : undefined;
  }

  /** The readiness probe reports here too, so ingest resumes without waiting for a batch. */
  setDatabaseAvailable(available: boolean): void {
    this.databaseAvailable = available;
  }

  submit(request: ValidatedRequest, ack: IngestAck): Promise<SubmitResult> | SubmitResult {
    const retryAfterSeconds = this.options.retryAfterSeconds;
    if (this.closing) return failed(shuttingDownProblem(retryAfterSeconds));
    const bytes = request.json.length;
    // Only a partial bulk's re-serialised text can outgrow its body (MAX_BODY_BYTES ≤ a batch).
    if (bytes > this.options.batchMaxBytes)
      return failed(
        problem(
          'payload_too_large',
          `The validated events are ${bytes} bytes; a batch holds ${this.options.batchMaxBytes} (BATCH_MAX_BYTES).`,
        ),
      );
    const full = this.queueFullProblem(request.eventCount, bytes);
    if (full) return failed(full);
    // A durable request would only wait out its deadline; say so now.
    if (ack === 'durable' && !this.databaseAvailable) {
      return failed(
        problem('database_unavailable', 'The database is not reachable.', { retryAfterSeconds }),
      );
    }
    const enqueue = (settle: (result: SubmitResult) => void, durable: boolean) => {
      this.pending.push({
        request,
        durable,
        deadline: Date.now() + this.options.ingestTimeoutMs,
        settled: !durable,
        settle,
        crashes: 0,
      });
      this.pendingEvents += request.eventCount;
      this.pendingBytes += bytes;
      this.scheduleFlush();
    };
    if (ack === 'queued') {
      enqueue(() => undefined, false);
      return { kind: 'queued' };
    }
    if (acksBeforeCommit()) {
      enqueue(() => undefined, false);
      return { kind: 'stored', inserted: request.eventCount, duplicates: 0 };
    }
    return new Promise<SubmitResult>((resolve) => enqueue(resolve, true));
  }

  /** Stop accepting, write everything accepted, and resolve when idle or at the deadline. */
  async drain(timeoutMs: number): Promise<{ drained: boolean; leftEvents: number }> {
    this.closing = true;
    this.giveUpAt = Date.now() + timeoutMs;
    this.flush(true);
    if (this.depth > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
      ]);
      clearTimeout(timer);
    }
    clearInterval(this.deadlineSweep);
    clearTimeout(this.maxWaitTimer);
    return { drained: this.depth === 0, leftEvents: this.depth };
  }

  private scheduleFlush(): void {
    if (this.canStartBatch(false)) {
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // setImmediate, not a microtask: requests parsed in the same loop turn share the batch.
        setImmediate(() => {
          this.flushScheduled = false;
          this.flush(false);
        });
      }
    } else {
      this.maxWaitTimer ??= setTimeout(() => {
        this.maxWaitTimer = undefined;
        this.flush(true);
      }, this.options.batchMaxWaitMs);
    }
  }

  /** overflow: past the max-wait ceiling (or at shutdown), also fill Piscina's queue. */
  private canStartBatch(overflow: boolean): boolean {
    if (this.pending.length === 0) return false;
    if (overflow)
      return this.runningBatches < this.writers.concurrency + this.writers.queueCapacity;
    if (this.runningBatches === 0) return true;
    // A second batch in flight only pays when it is big. Single events written one batch at a
    // time group-commit into larger INSERTs, and on 2 cores that stored 16k events/s against 13k
    // with two small batches in flight; bulk requests still use every writer.
    return (
      this.runningBatches < this.writers.concurrency && this.pendingEvents >= parallelBatchMinEvents
    );
  }

  private flush(overflow: boolean): void {
    while (this.canStartBatch(overflow)) {
      const batch = this.takeBatch();
      if (batch.length > 0) void this.runBatch(batch);
    }
    if (this.pending.length > 0) this.scheduleFlush();
    else this.notifyIfIdle();
  }

  private takeBatch(): Submission[] {
    const { batchMaxSize, batchMaxBytes } = this.options;
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

  private async runBatch(batch: Submission[]): Promise<void> {
    this.runningBatches++;
    const held = new Set(batch);
    const release = (group: readonly Submission[]) => {
      for (const s of group) {
        if (!held.delete(s)) continue;
        this.inFlightEvents -= s.request.eventCount;
        this.inFlightBytes -= s.request.json.length;
        this.inFlight.delete(s);
      }
    };
    // Enough to isolate two requests that crash every writer (a crash per halving on the way down,
    // then their own); a crash that strikes whatever runs stops here instead of splitting down to
    // single requests, so a batch costs O(log n) crashes, never O(n).
    const crashBudget = 2 * (maxCrashesPerRequest + Math.ceil(Math.log2(batch.length)));
    let crashes = 0;
    let backoffMs = retryBackoffMs.first;
    // Groups still to write, in order. A group of several requests that crashes its writer comes
    // back as its two halves, as the writer splits groups on data errors: only a request that
    // crashes a writer on its own is given up. Breadth first: the half without the crash commits
    // before the other is split further, so neighbours wait one crash per level, not the subtree.
    const todo: Submission[][] = [batch];
    try {
      for (let group = todo.shift(); group; group = todo.shift()) {
        // Durable requests answered 503 meanwhile are dropped: their clients retry with the same ids.
        const live = group.filter((s) => !(s.durable && s.settled));
        if (live.length === 0) continue;
        const result = await this.write(live);
        if (result !== 'crashed' && result.kind === 'done') {
          this.settleDone(live, result);
          release(live);
          backoffMs = retryBackoffMs.first;
          continue;
        }
        if (result === 'crashed') {
          crashes++;
          for (const s of live) s.crashes++;
          if (live.length === 1 && live[0]!.crashes >= maxCrashesPerRequest) {
            this.giveUp(live, 'its writer thread crashed repeatedly');
            release(live);
            continue;
          }
        }
        const halve = result === 'crashed' && live.length > 1;
        if (halve) {
          const middle = live.length >>> 1;
          todo.push(live.slice(0, middle), live.slice(middle));
        } else todo.push(live);
        if (crashes >= crashBudget || Date.now() >= this.giveUpAt) {
          this.giveUp(
            todo.flat(),
            crashes >= crashBudget ? 'writer threads crashed repeatedly' : 'shutdown deadline',
          );
          return;
        }
        // Halving is a new attempt, not a repeat: it waits the shortest backoff.
        await new Promise((resolve) =>
          setTimeout(resolve, halve ? retryBackoffMs.first : backoffMs),
        );
        if (!halve) backoffMs = Math.min(backoffMs * 2, retryBackoffMs.max);
      }
    } finally {
      release([...held]);
      this.runningBatches--;
      if (this.pending.length > 0) this.flush(this.closing);
      else this.notifyIfIdle();
    }
  }

  /** One attempt at one group: its result, counted and logged, or 'crashed' (outcome in doubt). */
  private async write(live: readonly Submission[]): Promise<InsertBatchResult | 'crashed'> {
    const startedMs = performance.now();
    let result: InsertBatchResult;
    try {
      result = await this.writers.run({ requests: live.map((s) => s.request.json) });
    } catch (err) {
      // The thread died (crash, exit, heap limit); Piscina replaces it. The outcome is in doubt.
      this.log.error(
        { requests: live.length, events: countEvents(live), err: (err as Error).message },
        '[ingest] batch insert FAILED',
      );
      this.telemetry.databaseErrors.inc({ class: 'writer_crash', sqlstate: 'none' });
      return 'crashed';
    }
    if (result.kind === 'done') {
      this.databaseAvailable = true;
      this.failedWrite = undefined;
      this.telemetry.batchSeconds.observe((performance.now() - startedMs) / 1000);
      this.telemetry.batchSize.observe(result.outcomes.length);
      if (result.conflictRetries > 0) {
        this.telemetry.databaseErrors.inc(
          { class: 'conflict', sqlstate: '40P01' },
          result.conflictRetries,
        );
      }
      return result;
    }
    this.databaseAvailable = false;
    this.failedWrite = { atMs: Date.now(), sqlstate: result.sqlstate };
    this.telemetry.databaseErrors.inc({ class: 'unavailable', sqlstate: result.sqlstate });
    this.log.warn(
      { events: countEvents(live), sqlstate: result.sqlstate, reason: result.message },
      '[ingest] batch insert FAILED',
    );
    return result;
  }

  private settleDone(
    live: readonly Submission[],
    result: Extract<InsertBatchResult, { kind: 'done' }>,
  ): void {
    const rejected = new Map(result.rejectedGroups.map((g) => [g.group, g]));
    let offset = 0;
    live.forEach((s, group) => {
      const start = offset;
      offset += s.request.eventCount;
      const refusal = rejected.get(group);
      if (refusal) {
        this.telemetry.databaseErrors.inc({ class: 'data', sqlstate: refusal.sqlstate });
        this.log.error(
          { events: s.request.eventCount, sqlstate: refusal.sqlstate, reason: refusal.message },
          '[ingest] batch insert FAILED',
        );
        // The reason is logged above; Postgres's message names tables and constraints.
        settleOnce(
          s,
          failed(
            problem(
              'unstorable_event',
              `The database refused these events (SQLSTATE ${refusal.sqlstate}); resending them will not help.`,
            ),
          ),
        );
        return;
      }
      let inserted = 0;
      for (let i = start; i < offset; i++)
        if (result.outcomes[i] === EventOutcome.inserted) inserted++;
      this.telemetry.eventsInserted.inc(inserted);
      this.telemetry.eventsDuplicate.inc(s.request.eventCount - inserted);
      settleOnce(s, { kind: 'stored', inserted, duplicates: s.request.eventCount - inserted });
    });
  }

  private giveUp(live: readonly Submission[], reason: string): void {
    const lost = live.filter((s) => !s.durable);
    if (lost.length > 0) {
      this.log.error(
        { events: countEvents(lost), reason },
        '[ingest] batch insert FAILED: queued events dropped',
      );
    }
    for (const s of live) {
      settleOnce(
        s,
        failed(
          problem(
            'ingest_timeout',
            `The events may or may not be stored (${reason}); retry with the same event_id.`,
            {
              retryAfterSeconds: this.options.retryAfterSeconds,
            },
          ),
        ),
      );
    }
  }

  private expireOverdue(): void {
    const now = Date.now();
    const overdue = (s: Submission) => s.durable && !s.settled && now >= s.deadline;
    const timeout = () =>
      failed(
        problem(
          'ingest_timeout',
          'The events were not confirmed in time; retry with the same event_id.',
          {
            retryAfterSeconds: this.options.retryAfterSeconds,
          },
        ),
      );
    for (const s of this.pending) if (overdue(s)) settleOnce(s, timeout());
    for (const s of this.inFlight) if (overdue(s)) settleOnce(s, timeout());
  }

  private notifyIfIdle(): void {
    if (this.depth > 0 || this.idleWaiters.length === 0) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

function settleOnce(s: Submission, result: SubmitResult): void {
  if (s.durable && s.settled) return;
  s.settled = true;
  s.settle(result);
}

function failed(p: Problem): SubmitResult {
  return { kind: 'failed', problem: p };
}

function countEvents(submissions: readonly Submission[]): number {
  return submissions.reduce((n, s) => n + s.request.eventCount, 0);
}
