// Runs in a Piscina writer thread: owns one pg pool for the thread's lifetime and stores each batch
// it is handed. Returns plain results; it throws only on a bug.
import { threadId, workerData } from 'node:worker_threads';
import type pg from 'pg';
import { pino } from 'pino';
import { injectedWriterCrash, switchOnFaults } from '../faults/fault-injection.js';
import { createPool } from '../sql/create-pool.js';
import { defaultProjectId } from '../sql/insert-events.js';
import type { IncomingEvent } from '../validation/validate-events.js';
import type {
  InsertBatchResult,
  InsertBatchTask,
  WriterThreadOptions,
} from './insert-batch-messages.js';
import { insertGroups } from './insert-groups.js';

const options = workerData as WriterThreadOptions;
const log = pino({
  level: options.logLevel,
  base: { service: 'pulse', pid: process.pid, thread: 'writer' },
});
switchOnFaults(options.faults ?? []);
let pool: pg.Pool | undefined;
const utf8 = new TextDecoder();

/** What the batcher sends per request: a validated body, single or bulk. */
type RequestBody = IncomingEvent | { readonly events: IncomingEvent[] };

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
  const projectIds = task.projectIds ?? task.requests.map(() => defaultProjectId);
  return (
    injectedWriterCrash(events) ?? insertGroups(pool, events, { projectIds, starts: groupStarts })
  );
}
