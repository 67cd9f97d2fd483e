// Runs in a Piscina writer thread: owns one pg pool for the thread's lifetime and writes each batch
// with one multi-row INSERT. Returns plain results; it throws only on a bug.
import { hash } from 'node:crypto';
import { threadId, workerData } from 'node:worker_threads';
import type pg from 'pg';
import { pino } from 'pino';
import { classifyPgError, pgErrorCode } from '../sql/classify-pg-error.js';
import { createPool } from '../sql/create-pool.js';
import { insertEvents, type EventColumns } from '../sql/insert-events.js';
import type { IncomingEvent } from '../validation/validate-events.js';
import {
  EventOutcome,
  type InsertBatchResult,
  type InsertBatchTask,
  type RejectedGroup,
  type WriterThreadOptions,
} from './insert-batch-messages.js';
import { crashWorker, requestedWorkerCrash } from './worker-crash-fault.js';

const options = workerData as WriterThreadOptions;
const log = pino({
  level: options.logLevel,
  base: { service: 'pulse', pid: process.pid, thread: 'writer' },
});
const faults = new Set(options.faults ?? []);
/** Negative control for the twin-streams chaos test: write keys in arrival order and let deadlocks
 *  surface instead of retrying them, to prove that test can see the deadlocks sorting prevents. */
const unsortedBatches = faults.has('unsorted-batches');
let pool: pg.Pool | undefined;
const utf8 = new TextDecoder();

/** What the batcher sends per request: a validated body, single or bulk. */
type RequestBody = IncomingEvent | { readonly events: IncomingEvent[] };

/** Deadlocks are retried at once a few times; sorted keys make them rare, not impossible. */
const maxConflictRetries = 5;

export default async function insertBatch(task: InsertBatchTask): Promise<InsertBatchResult> {
  // The thread id in application_name tells each thread's backends apart in pg_stat_activity:
  // after a crash, the dead thread's must go and its replacement's appear.
  pool ??= createPool(
    { ...options.pool, applicationName: `${options.pool.applicationName}:${threadId}` },
    log,
  );
  const events: IncomingEvent[] = [];
  const groupStarts: number[] = [];
  for (const json of task.requests) {
    const body = JSON.parse(typeof json === 'string' ? json : utf8.decode(json)) as RequestBody;
    groupStarts.push(events.length);
    if ('events' in body) for (const event of body.events) events.push(event);
    else events.push(body);
  }
  groupStarts.push(events.length);
  if (faults.has('worker-crash')) {
    const crash = requestedWorkerCrash(events);
    if (crash) return crashWorker(crash);
  }
  const groups = groupStarts.length - 1;
  const keys = events.map(idempotencyKey);
  const outcomes = new Uint8Array(events.length);
  const rejectedGroups: RejectedGroup[] = [];
  const state = { conflictRetries: 0 };

  // Insert groups [lo, hi). On a data error, halve and retry so one unstorable request cannot take
  // its neighbours down; validation should make this path unreachable.
  const insertGroups = async (db: pg.Pool, lo: number, hi: number): Promise<void> => {
    const from = groupStarts[lo]!;
    const to = groupStarts[hi]!;
    const columns = toColumns(events, keys, from, to);
    let inserted: Set<string>;
    try {
      inserted = await withConflictRetries(() => insertEvents(db, columns), state);
    } catch (err) {
      if (classifyPgError(err) !== 'data') throw err;
      if (hi - lo === 1) {
        rejectedGroups.push({
          group: lo,
          sqlstate: pgErrorCode(err),
          message: (err as Error).message,
        });
        outcomes.fill(EventOutcome.rejected, from, to);
        return;
      }
      const mid = (lo + hi) >>> 1;
      await insertGroups(db, lo, mid);
      await insertGroups(db, mid, hi);
      return;
    }
    // The first occurrence of an inserted key is the insert; any later one in the batch is its duplicate.
    for (let i = from; i < to; i++) {
      const key = keys[i]!;
      if (inserted.delete(key)) outcomes[i] = EventOutcome.inserted;
    }
  };

  try {
    await insertGroups(pool, 0, groups);
  } catch (err) {
    return { kind: 'unavailable', sqlstate: pgErrorCode(err), message: (err as Error).message };
  }
  return { kind: 'done', outcomes, rejectedGroups, conflictRetries: state.conflictRetries };
}

async function withConflictRetries<T>(
  run: () => Promise<T>,
  state: { conflictRetries: number },
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      const retries = unsortedBatches ? 0 : maxConflictRetries;
      if (classifyPgError(err) !== 'conflict' || attempt >= retries) throw err;
      state.conflictRetries++;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * (attempt + 1)));
    }
  }
}

/** md5 of the key material as a uuid. The separators are U+0000, which validation forbids in
 *  values, and the i/c prefix keeps an event_id from ever colliding with a composite key. */
export function idempotencyKey(event: IncomingEvent): string {
  const material =
    event.event_id !== undefined
      ? `i${event.event_id}`
      : `c${event.event_name}\u0000${event.user_id}\u0000${event.timestamp}`;
  const hex = hash('md5', material, 'hex'); // one-shot: no Hash object per event
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function toColumns(
  events: readonly IncomingEvent[],
  keys: readonly string[],
  from: number,
  to: number,
): EventColumns {
  const firstIndexByKey = new Map<string, number>();
  for (let i = from; i < to; i++)
    if (!firstIndexByKey.has(keys[i]!)) firstIndexByKey.set(keys[i]!, i);
  const firstSeen = [...firstIndexByKey.entries()];
  const order = unsortedBatches ? firstSeen : firstSeen.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  const columns: EventColumns = {
    keys: [],
    eventIds: [],
    eventNames: [],
    userIds: [],
    timestamps: [],
    channels: [],
    campaignIds: [],
    tags: [],
    metadata: [],
  };
  for (const [key, i] of order) {
    const event = events[i]!;
    columns.keys.push(key);
    columns.eventIds.push(event.event_id ?? null);
    columns.eventNames.push(event.event_name);
    columns.userIds.push(event.user_id);
    columns.timestamps.push(event.timestamp);
    columns.channels.push(event.channel ?? null);
    columns.campaignIds.push(event.campaign_id ?? null);
    columns.tags.push(event.tags ? postgresArrayLiteral(event.tags) : null);
    columns.metadata.push(event.metadata ? JSON.stringify(event.metadata) : null);
  }
  return columns;
}

function postgresArrayLiteral(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/[\\"]/g, '\\$&')}"`).join(',')}}`;
}
