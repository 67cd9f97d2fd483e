// Everything that crosses the process boundary between a scenario and its slow-client swarm
// (slow-swarm-process.ts starts it, slow-swarm-child.ts runs it): one module both sides import.
import type { SlowCut, SlowKind, SlowSwarmOptions } from './slow-client-swarm.js';

/** Scenario → swarm. The options themselves go in argv, so the swarm starts without a round trip. */
export type SwarmCommand = { readonly type: 'stop' };

export type OpenCounts = Readonly<Record<SlowKind, number>>;

/** Swarm → scenario. */
export type SwarmReport =
  /** Sent every reportEveryMs while the swarm runs. */
  | { readonly type: 'open'; readonly open: OpenCounts }
  /** Sent once, after stop: the swarm's sockets are closed and the process exits. */
  | {
      readonly type: 'stopped';
      readonly cuts: readonly SlowCut[];
      readonly connectErrors: number;
      /** Highest open count seen at any report, by kind. */
      readonly maxOpen: OpenCounts;
    };

export type SwarmChildOptions = SlowSwarmOptions & { readonly reportEveryMs: number };
