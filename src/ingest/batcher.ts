// Group commit. Requests append their validated events; a batch goes to a writer thread as soon as
// one is free, and whatever arrives while every writer is busy becomes the next, larger batch.
// BATCH_MAX_WAIT_MS is a ceiling, never a fixed wait: past it, waiting events are queued to Piscina
// even though every writer is busy. A request's events always travel in one batch and so commit
// in one transaction. The queue and each batch are bounded in events and in bytes of request text.
import type { ProjectCommit } from '../sql/commit-notifications.js';
import type { Logger } from 'pino';
import type { IngestAck } from '../config.js';
import { problem, shuttingDownProblem, type Problem } from '../errors.js';
import { acksBeforeCommit } from '../faults/fault-injection.js';
import { defaultProjectId } from '../sql/insert-events.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import type { InsertBatchResult } from '../workers/insert-batch-messages.js';
import { writeIsolatingCrashes, type GroupWriter } from './crash-isolation.js';
import { IngestQueue, type QueueLimits } from './ingest-queue.js';
import {
  countEvents,
  failed,
  giveUp,
  settleOnce,
  settleWritten,
  timedOut,
  type AnswerContext,
  type Submission,
  type SubmitResult,
  type ValidatedRequest,
} from './submission.js';
import type { WriterPool } from './writer-pool.js';

export type { SubmitResult, ValidatedRequest };

export interface BatcherOptions extends QueueLimits {
  readonly batchMaxWaitMs: number;
  /** Durable requests not committed by then get 503 (their outcome is in doubt). */
  readonly ingestTimeoutMs: number;
}

/** Waiting events that justify another concurrent batch (see canStartBatch): one bulk request. */
const parallelBatchMinEvents = 100;

export class Batcher {
  private readonly queue: IngestQueue;
  private readonly answers: AnswerContext;
  private readonly groupWriter: GroupWriter;
  private runningBatches = 0;
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
    /** Told of every batch's stored keys once they are committed. */
    private readonly announceCommitted: (committed: readonly ProjectCommit[]) => void = () =>
      undefined,
  ) {
    this.queue = new IngestQueue(options);
    this.answers = { telemetry, log, retryAfterSeconds: options.retryAfterSeconds };
    this.groupWriter = {
      write: (live) => this.write(live),
      settleWritten: (live, result) => settleWritten(live, result, this.answers),
      giveUp: (live, reason) => giveUp(live, reason, this.answers),
      release: (s) => this.queue.release(s),
      giveUpAt: () => this.giveUpAt,
    };
    // One sweep for all requests instead of a timer per request on the hot path.
    this.deadlineSweep = setInterval(
      () =>
        this.queue.forEachOverdue(Date.now(), (s) =>
          settleOnce(s, timedOut(options.retryAfterSeconds)),
        ),
      Math.min(250, options.ingestTimeoutMs / 4),
    );
    this.deadlineSweep.unref();
  }

  /** Events accepted but not yet committed. */
  get depth(): number {
    return this.queue.depth;
  }

  /** Bytes held for ingest (see IngestQueue.depthBytes). */
  get depthBytes(): number {
    return this.queue.depthBytes;
  }

  /** See IngestQueue.reserveBytes. */
  reserveBytes(bytes: number): () => void {
    return this.queue.reserveBytes(bytes);
  }

  /** The 503 for a request that does not fit, or undefined. The route asks before reading a body
   *  (with its Content-Length), so a refused body is never parsed; submit asks again. */
  queueFullProblem(events: number, bytes: number): Problem | undefined {
    return this.queue.fullProblem(events, bytes);
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
    const full = this.queue.fullProblem(request.eventCount, bytes);
    if (full) return failed(full);
    // A durable request would only wait out its deadline; say so now.
    if (ack === 'durable' && !this.databaseAvailable) {
      return failed(
        problem('database_unavailable', 'The database is not reachable.', { retryAfterSeconds }),
      );
    }
    const enqueue = (settle: (result: SubmitResult) => void, durable: boolean) => {
      this.queue.add({
        request,
        durable,
        deadline: Date.now() + this.options.ingestTimeoutMs,
        settled: !durable,
        settle,
        crashes: 0,
        listOlder: undefined,
        listNewer: undefined,
      });
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
    if (this.queue.pending.length === 0) return false;
    if (overflow)
      return this.runningBatches < this.writers.concurrency + this.writers.queueCapacity;
    if (this.runningBatches === 0) return true;
    // A second batch in flight only pays when it is big: single events written one batch at a
    // time group-commit into larger INSERTs, which store more per second than several small
    // batches in flight; bulk requests still use every writer.
    return (
      this.runningBatches < this.writers.concurrency &&
      this.queue.pendingEvents >= parallelBatchMinEvents
    );
  }

  private flush(overflow: boolean): void {
    while (this.canStartBatch(overflow)) {
      const batch = this.queue.takeBatch();
      if (batch.length > 0) void this.runBatch(batch);
    }
    if (this.queue.pending.length > 0) this.scheduleFlush();
    else this.notifyIfIdle();
  }

  private async runBatch(batch: Submission[]): Promise<void> {
    this.runningBatches++;
    try {
      await writeIsolatingCrashes(batch, this.groupWriter);
    } finally {
      this.runningBatches--;
      if (this.queue.pending.length > 0) this.flush(this.closing);
      else this.notifyIfIdle();
    }
  }

  /** One attempt at one group: its result, counted and logged, or 'crashed' (outcome in doubt). */
  private async write(live: readonly Submission[]): Promise<InsertBatchResult | 'crashed'> {
    const startedMs = performance.now();
    let result: InsertBatchResult;
    try {
      result = await this.writers.run({
        requests: live.map((s) => s.request.json),
        projectIds: live.map((s) => s.request.projectId ?? defaultProjectId),
      });
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
      if (result.committed.length > 0) this.announceCommitted(result.committed);
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

  private notifyIfIdle(): void {
    if (this.depth > 0 || this.idleWaiters.length === 0) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
