// The hot statement: a whole batch as ONE multi-row INSERT whose text never changes. Each column
// travels as one array parameter, so any batch size binds one parameter per column (one per row
// would overflow the protocol's 16-bit count at 65,536) and the statement is prepared once per
// connection. A batch of one project (nearly every batch) sends its project once: unnest pads the
// empty per-row project array with NULLs, and coalesce fills in the batch's project.
import { hash } from 'node:crypto';
import type pg from 'pg';
import { keysInArrivalOrder } from '../faults/fault-injection.js';
import type { IncomingEvent } from '../validation/validate-events.js';
import { isConnectionLost } from './classify-pg-error.js';
import type { ProjectCommit } from './commit-notifications.js';
import { eventColumns } from './event-columns.js';

const columnNames = eventColumns.map((c) => c.column);
export const insertEventsSql = `
INSERT INTO events (project_id, idem_key, ${columnNames.join(', ')})
SELECT coalesce(project_id, $1::int4), idem_key, ${eventColumns.map((c) => c.fromElement(c.column)).join(', ')}
FROM unnest($2::int4[], $3::uuid[], ${eventColumns.map((c, i) => `$${i + 4}::${c.arrayType}`).join(', ')})
  AS batch(project_id, idem_key, ${columnNames.join(', ')})
ON CONFLICT (project_id, idem_key) DO NOTHING
RETURNING project_id, idem_key, txid`;

/** The project of rows sent without one: the events table's default. */
export const defaultProjectId = 1;

/** What the statement did with each event: stored it, or found its key already stored (before,
 *  or by an earlier event of the same batch). */
export const InsertOutcome = { duplicate: 0, inserted: 1 } as const;

/** Which project each event of a batch belongs to: events [starts[i], starts[i + 1]) are
 *  projectIds[i]'s. A writer's batch has one run per request. */
export interface ProjectRuns {
  readonly projectIds: readonly number[];
  /** One more entry than projectIds: the last is the end of the last run. */
  readonly starts: readonly number[];
}

/** A batch ready to send, built once and sent again as it is when the statement is retried. */
export interface EventRows {
  /** Each event's idempotency key, in the order given. */
  readonly keys: readonly string[];
  /** [project, number of events] for consecutive events of keys, in order. */
  readonly projectRuns: readonly (readonly [projectId: number, events: number])[];
  /** The statement's parameters: the batch's project, the rows' projects (empty when the batch
   *  has one), the keys, then one array per column of eventColumns, with one entry per distinct
   *  (project, key), sorted by project then key: concurrent multi-row inserts that take
   *  overlapping keys in different orders deadlock. */
  readonly params: unknown[];
}

export interface InsertedEvents {
  /** One InsertOutcome per event, in the order given. */
  readonly outcomes: Uint8Array;
  readonly inserted: number;
  /** The keys this statement stored, per project: what the commit notification names. */
  readonly stored: readonly ProjectCommit[];
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

/** The events of runs [fromRun, toRun) as the statement's rows. */
export function toEventRows(
  events: readonly IncomingEvent[],
  runs: ProjectRuns = { projectIds: [defaultProjectId], starts: [0, events.length] },
  fromRun = 0,
  toRun = runs.projectIds.length,
): EventRows {
  const keys: string[] = [];
  const projectRuns: [number, number][] = [];
  // Keys are first seen per project: the same key in two projects is two events.
  const firstIndexByKey = new Map<number, Map<string, number>>();
  for (let run = fromRun; run < toRun; run++) {
    const projectId = runs.projectIds[run]!;
    const from = runs.starts[run]!;
    const to = runs.starts[run + 1]!;
    let firstSeen = firstIndexByKey.get(projectId);
    if (!firstSeen) firstIndexByKey.set(projectId, (firstSeen = new Map<string, number>()));
    const last = projectRuns[projectRuns.length - 1];
    if (last?.[0] === projectId) last[1] += to - from;
    else projectRuns.push([projectId, to - from]);
    for (let i = from; i < to; i++) {
      const key = idempotencyKey(events[i]!);
      keys.push(key);
      if (!firstSeen.has(key)) firstSeen.set(key, i);
    }
  }
  const projects = [...firstIndexByKey.keys()].sort((a, b) => a - b);
  const rowProjects: number[] = [];
  let firstSeen: [string, number][] = [];
  for (const projectId of projects) {
    const ofProject = [...firstIndexByKey.get(projectId)!.entries()];
    if (!keysInArrivalOrder()) ofProject.sort((a, b) => (a[0] < b[0] ? -1 : 1));
    if (projects.length === 1) firstSeen = ofProject;
    else
      for (const entry of ofProject) {
        firstSeen.push(entry);
        rowProjects.push(projectId);
      }
  }
  // Column by column: each array is built at its final size.
  const params: unknown[] = [projects[0] ?? defaultProjectId, rowProjects];
  params.push(firstSeen.map(([key]) => key));
  for (const { element } of eventColumns)
    params.push(firstSeen.map(([, i]) => element(events[i]!)));
  return { keys, projectRuns, params };
}

/** Stores the events whose keys are new. */
export function insertEvents(
  pool: pg.Pool,
  events: readonly IncomingEvent[],
  projectId = defaultProjectId,
): Promise<InsertedEvents> {
  return insertEventRows(
    pool,
    toEventRows(events, { projectIds: [projectId], starts: [0, events.length] }),
  );
}

/** A pooled connection the server closed while it sat idle (pg_terminate_backend, an idle
 *  timeout) can be handed out before its 'error' arrives; the statement then fails without having
 *  run. pool.query discards that client, so going again gets a fresh connection. Two reruns: more
 *  than one dead connection can be waiting in the pool. */
const connectionLostReruns = 2;

export async function insertEventRows(pool: pg.Pool, rows: EventRows): Promise<InsertedEvents> {
  for (let rerun = 0; ; rerun++) {
    try {
      return await insertOnce(pool, rows);
    } catch (err) {
      if (rerun >= connectionLostReruns || !isConnectionLost(err)) throw err;
    }
  }
}

async function insertOnce(pool: pg.Pool, rows: EventRows): Promise<InsertedEvents> {
  // txid: int8, which pg returns as text; every row of the statement has the same.
  const result = await pool.query<{ project_id: number; idem_key: string; txid: string }>({
    name: 'insert-events',
    text: insertEventsSql,
    values: rows.params,
  });
  const insertedKeys = new Map(
    rows.projectRuns.map(([projectId]) => [projectId, new Set<string>()]),
  );
  const onlyProject = insertedKeys.size === 1 ? insertedKeys.get(rows.projectRuns[0]![0]) : null;
  const storedKeys = new Map<number, string>();
  for (const row of result.rows) {
    (onlyProject ?? insertedKeys.get(row.project_id))!.add(row.idem_key);
    storedKeys.set(row.project_id, (storedKeys.get(row.project_id) ?? '') + row.idem_key);
  }
  const txid = Number(result.rows[0]?.txid);
  // The first event with an inserted key is the insert; any later one in the batch is its duplicate.
  const outcomes = new Uint8Array(rows.keys.length);
  let i = 0;
  for (const [projectId, events] of rows.projectRuns) {
    const ofProject = insertedKeys.get(projectId)!;
    for (const end = i + events; i < end; i++)
      if (ofProject.delete(rows.keys[i]!)) outcomes[i] = InsertOutcome.inserted;
  }
  return {
    outcomes,
    inserted: result.rows.length,
    stored: [...storedKeys].map(([projectId, keys]) => ({ projectId, txid, keys })),
  };
}
