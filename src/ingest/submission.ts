// A request the batcher holds until it is answered, and every answer it can get: stored (from the
// writer's outcomes), refused as unstorable, or given up with its outcome in doubt. Each request is
// answered exactly once.
import type { Logger } from 'pino';
import { problem, type Problem } from '../errors.js';
import type { ListLinks } from '../intrusive-list.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import { EventOutcome, type InsertBatchResult } from '../workers/insert-batch-messages.js';

export type SubmitResult =
  | { readonly kind: 'stored'; readonly inserted: number; readonly duplicates: number }
  | { readonly kind: 'queued' }
  | { readonly kind: 'failed'; readonly problem: Problem };

/** One validated request: its body as JSON (an event, or {"events":[…]}), and its size. A large
 *  body stays the UTF-8 bytes it arrived as, outside the JS heap; the rest are text. Its bytes are
 *  counted as `json.length`: free to read, and never more than the UTF-8 body it came from. A
 *  string with a character past U+00FF is stored at two bytes per character, so memory is at most
 *  twice it. */
export interface ValidatedRequest {
  readonly json: string | Uint8Array;
  readonly eventCount: number;
  /** The project every event of the request is stored in; absent, the default project. */
  readonly projectId?: number;
}

/** Its links put it in the list of durable requests on a writer thread (IngestQueue). */
export interface Submission extends ListLinks<Submission> {
  readonly request: ValidatedRequest;
  readonly durable: boolean;
  readonly deadline: number;
  settled: boolean;
  readonly settle: (result: SubmitResult) => void;
  /** Writer threads that died while this request was on them. */
  crashes: number;
}

/** What answering needs besides the requests. */
export interface AnswerContext {
  readonly telemetry: Telemetry;
  readonly log: Logger;
  readonly retryAfterSeconds: number;
}

export type WrittenBatch = Extract<InsertBatchResult, { kind: 'done' }>;

export function settleOnce(s: Submission, result: SubmitResult): void {
  if (s.durable && s.settled) return;
  s.settled = true;
  s.settle(result);
}

export function failed(p: Problem): SubmitResult {
  return { kind: 'failed', problem: p };
}

export function countEvents(submissions: readonly Submission[]): number {
  return submissions.reduce((n, s) => n + s.request.eventCount, 0);
}

/** Answers each request of a written group from its events' outcomes, or as unstorable when
 *  Postgres refused it. */
export function settleWritten(
  live: readonly Submission[],
  result: WrittenBatch,
  { telemetry, log }: AnswerContext,
): void {
  const rejected = new Map(result.rejectedGroups.map((g) => [g.group, g]));
  let offset = 0;
  live.forEach((s, group) => {
    const start = offset;
    offset += s.request.eventCount;
    const refusal = rejected.get(group);
    if (refusal) {
      telemetry.databaseErrors.inc({ class: 'data', sqlstate: refusal.sqlstate });
      log.error(
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
    telemetry.eventsInserted.inc(inserted);
    telemetry.eventsDuplicate.inc(s.request.eventCount - inserted);
    settleOnce(s, { kind: 'stored', inserted, duplicates: s.request.eventCount - inserted });
  });
}

/** Answers 503 to requests whose outcome is in doubt; queued ones are lost, and logged so. */
export function giveUp(
  live: readonly Submission[],
  reason: string,
  { log, retryAfterSeconds }: AnswerContext,
): void {
  const lost = live.filter((s) => !s.durable);
  if (lost.length > 0) {
    log.error(
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
          { retryAfterSeconds },
        ),
      ),
    );
  }
}

/** The answer of a durable request not committed by its deadline. */
export function timedOut(retryAfterSeconds: number): SubmitResult {
  return failed(
    problem(
      'ingest_timeout',
      'The events were not confirmed in time; retry with the same event_id.',
      {
        retryAfterSeconds,
      },
    ),
  );
}
