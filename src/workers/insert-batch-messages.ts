// Every message that crosses the thread boundary between the batcher and a writer thread.
// Plain data only: an Error posted between threads loses its class, code and custom fields.
import type { IncomingEvent } from '../validation/validate-events.js';
import type { LogLevel } from '../config.js';
import type { PoolOptions } from '../sql/create-pool.js';

/** Given to each writer thread once, as Piscina's workerData. */
export interface WriterThreadOptions {
  readonly pool: PoolOptions;
  readonly logLevel: LogLevel;
}

export interface InsertBatchTask {
  readonly events: readonly IncomingEvent[];
  /** Events of one request are contiguous; group i holds groupSizes[i] events. A group is
   *  committed or rejected as a whole. */
  readonly groupSizes: readonly number[];
}

export const EventOutcome = { duplicate: 0, inserted: 1, rejected: 2 } as const;

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
    }
  | {
      readonly kind: 'unavailable';
      readonly sqlstate: string;
      readonly message: string;
    };
