// Every message that crosses the thread boundary between the batcher and a writer thread.
// Plain data only: an Error posted between threads loses its class, code and custom fields.
import type { Fault, LogLevel } from '../config.js';
import type { ProjectCommit } from '../sql/commit-notifications.js';
import type { PoolOptions } from '../sql/create-pool.js';
import { InsertOutcome } from '../sql/insert-events.js';

/** Given to each writer thread once, as Piscina's workerData. */
export interface WriterThreadOptions {
  readonly pool: PoolOptions;
  readonly logLevel: LogLevel;
  /** Test-only faults (FAULT_INJECTION) the writer acts on; absent or empty in production. */
  readonly faults?: readonly Fault[];
}

/** A batch crosses to the writer as its requests' JSON: element i is request i's validated body
 *  (an event object, or {"events":[…]}) as text, or a large one as its UTF-8 bytes, which the
 *  writer parses again. Each is copied once, straight into the message: an array of event objects
 *  would be a structured clone, far costlier on the main thread, and joining the texts into one
 *  string would copy every batch twice more there. Each request is a group, committed or rejected
 *  as a whole, and its events are contiguous in the outcomes. */
export interface InsertBatchTask {
  readonly requests: readonly (string | Uint8Array)[];
  /** The project of each request; absent, every request is the default project's. */
  readonly projectIds?: readonly number[];
}

/** The statement's outcomes plus one of the batch's own: the statement's are copied as they are. */
export const EventOutcome = { ...InsertOutcome, rejected: 2 } as const;

export interface RejectedGroup {
  readonly group: number;
  readonly sqlstate: string;
  readonly message: string;
}

export type InsertBatchResult =
  | {
      readonly kind: 'done';
      /** One EventOutcome per event, in task order. */
      readonly outcomes: Uint8Array;
      /** Groups Postgres refused for a data reason; the other groups are committed. */
      readonly rejectedGroups: readonly RejectedGroup[];
      /** Deadlocks and serialization failures retried on the way. */
      readonly conflictRetries: number;
      /** What each transaction stored, per project, for the commit notification. */
      readonly committed: readonly ProjectCommit[];
    }
  | {
      readonly kind: 'unavailable';
      readonly sqlstate: string;
      readonly message: string;
    };
