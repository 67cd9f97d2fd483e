// How a writer thread stores one batch: each request is a group, committed or refused whole. On a
// data error the groups are halved until the unstorable request stands alone, so it cannot take
// its neighbours down (validation should make that path unreachable); a deadlock is retried.
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { deadlockRetries } from '../faults/fault-injection.js';
import { classifyPgError, pgErrorCode } from '../sql/classify-pg-error.js';
import type { ProjectCommit } from '../sql/commit-notifications.js';
import {
  insertEventRows,
  toEventRows,
  type InsertedEvents,
  type ProjectRuns,
} from '../sql/insert-events.js';
import type { IncomingEvent } from '../validation/validate-events.js';
import {
  EventOutcome,
  type InsertBatchResult,
  type RejectedGroup,
} from './insert-batch-messages.js';

/** Deadlocks are retried at once a few times; sorted keys make them rare, not impossible. */
const maxConflictRetries = 5;

/** Each request is a group: groups.starts[g] is the index of group g's first event (its last entry
 *  is events.length), and groups.projectIds[g] the group's project. */
export async function insertGroups(
  pool: pg.Pool,
  events: readonly IncomingEvent[],
  groups: ProjectRuns,
): Promise<InsertBatchResult> {
  const groupStarts = groups.starts;
  const outcomes = new Uint8Array(events.length);
  const rejectedGroups: RejectedGroup[] = [];
  const committed: ProjectCommit[] = [];
  const state = { conflictRetries: 0 };

  // Groups [lo, hi).
  const insertRange = async (lo: number, hi: number): Promise<void> => {
    const from = groupStarts[lo]!;
    const to = groupStarts[hi]!;
    const rows = toEventRows(events, groups, lo, hi);
    let stored: InsertedEvents;
    try {
      stored = await withConflictRetries(() => insertEventRows(pool, rows), state);
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
      await insertRange(lo, mid);
      await insertRange(mid, hi);
      return;
    }
    outcomes.set(stored.outcomes, from);
    committed.push(...stored.stored);
  };

  try {
    await insertRange(0, groupStarts.length - 1);
  } catch (err) {
    return { kind: 'unavailable', sqlstate: pgErrorCode(err), message: (err as Error).message };
  }
  return {
    kind: 'done',
    outcomes,
    rejectedGroups,
    conflictRetries: state.conflictRetries,
    committed,
  };
}

async function withConflictRetries<T>(
  run: () => Promise<T>,
  state: { conflictRetries: number },
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      if (classifyPgError(err) !== 'conflict' || attempt >= deadlockRetries(maxConflictRetries))
        throw err;
      state.conflictRetries++;
      await sleep(Math.random() * 10 * (attempt + 1));
    }
  }
}
