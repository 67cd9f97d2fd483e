// Writing one batch when writer threads die under it. A group of several requests that crashes
// its writer comes back as its two halves, as the writer splits groups on data errors: only a
// request that crashes a writer on its own is given up, and a batch costs O(log n) crashes, never
// O(n). Any other failure retries the same group with a growing backoff.
import { setTimeout as sleep } from 'node:timers/promises';
import type { InsertBatchResult } from '../workers/insert-batch-messages.js';
import type { Submission, WrittenBatch } from './submission.js';

/** A request that was on this many crashed writer threads, the last one alone, is given up: it is
 *  poison, not a blip. */
const maxCrashesPerRequest = 3;
const retryBackoffMs = { first: 50, max: 2000 };

export interface GroupWriter {
  /** One attempt at one group: its result, or 'crashed' (the thread died; outcome in doubt). */
  write(live: readonly Submission[]): Promise<InsertBatchResult | 'crashed'>;
  settleWritten(live: readonly Submission[], result: WrittenBatch): void;
  /** Answers requests whose outcome is in doubt. */
  giveUp(live: readonly Submission[], reason: string): void;
  /** The request is off its writer thread (once per request). */
  release(s: Submission): void;
  /** When retrying stops (the shutdown deadline); Infinity until then. */
  giveUpAt(): number;
}

export async function writeIsolatingCrashes(
  batch: Submission[],
  writer: GroupWriter,
): Promise<void> {
  const held = new Set(batch);
  const release = (group: readonly Submission[]) => {
    for (const s of group) if (held.delete(s)) writer.release(s);
  };
  // Enough to isolate two requests that crash every writer (a crash per halving on the way down,
  // then their own); a crash that strikes whatever runs stops here instead of splitting down to
  // single requests.
  const crashBudget = 2 * (maxCrashesPerRequest + Math.ceil(Math.log2(batch.length)));
  let crashes = 0;
  let backoffMs = retryBackoffMs.first;
  // Groups still to write, in order. Breadth first: the half without the crash commits before the
  // other is split further, so neighbours wait one crash per level, not the subtree.
  const todo: Submission[][] = [batch];
  try {
    for (let group = todo.shift(); group; group = todo.shift()) {
      // Durable requests answered 503 meanwhile are dropped: their clients retry with the same ids.
      const live = group.filter((s) => !(s.durable && s.settled));
      if (live.length === 0) continue;
      const result = await writer.write(live);
      if (result !== 'crashed' && result.kind === 'done') {
        writer.settleWritten(live, result);
        release(live);
        backoffMs = retryBackoffMs.first;
        continue;
      }
      if (result === 'crashed') {
        crashes++;
        for (const s of live) s.crashes++;
        if (live.length === 1 && live[0]!.crashes >= maxCrashesPerRequest) {
          writer.giveUp(live, 'its writer thread crashed repeatedly');
          release(live);
          continue;
        }
      }
      const halve = result === 'crashed' && live.length > 1;
      if (halve) {
        const middle = live.length >>> 1;
        todo.push(live.slice(0, middle), live.slice(middle));
      } else todo.push(live);
      if (crashes >= crashBudget || Date.now() >= writer.giveUpAt()) {
        writer.giveUp(
          todo.flat(),
          crashes >= crashBudget ? 'writer threads crashed repeatedly' : 'shutdown deadline',
        );
        return;
      }
      // Halving is a new attempt, not a repeat: it waits the shortest backoff.
      await sleep(halve ? retryBackoffMs.first : backoffMs);
      if (!halve) backoffMs = Math.min(backoffMs * 2, retryBackoffMs.max);
    }
  } finally {
    release([...held]);
  }
}
