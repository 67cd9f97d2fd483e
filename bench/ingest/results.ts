// What the ingest bench records: per scenario and run, per run, and the medians it reports.
import type { CommitLatency } from '../lib/commit-latency.js';
import type { LoadResult } from '../lib/drive-load.js';
import type { CeilingResult } from '../lib/postgres-ceiling.js';

export interface CpuCores {
  /** The uWS thread: HTTP, parsing, validation, batching, the hand-off to writers. */
  readonly serverMain: number;
  /** Every other server thread (writers, GC helpers, libuv), by thread name. */
  readonly serverOtherByName: Readonly<Record<string, number>>;
  /** The same threads one by one, busiest first (Node names them all "node"; the two busiest
   *  are the writers in practice). */
  readonly serverOtherThreads: readonly number[];
  readonly serverTotal: number;
  readonly postgres: number | null;
  /** The load generator: this process (autocannon) or wrk, building and sending requests. */
  readonly loadGenerator: number;
  readonly machineBusy: number;
  /** Server threads and Postgres processes runnable but waiting for a core, in cores (seconds
   *  waited per second): beside an idle share of the machine, time lost to where the scheduler
   *  put the woken thread rather than to a lack of cores. */
  readonly waiting: number;
}

export interface ScenarioRun {
  readonly scenario: string;
  readonly connections: number;
  readonly eventsPerRequest: number;
  readonly bodyBytes: number;
  readonly serverEnv: Readonly<Record<string, string>>;
  readonly load: LoadResult;
  /** Rows stored by the measured load (after the warm-up's rows), or null when unknown. */
  readonly storedEvents: number | null;
  readonly storedEventsPerSecond: number | null;
  readonly storedUnavailableReason: string | null;
  /** Events in 2xx-answered requests. */
  readonly acknowledgedEvents: number;
  /** Rows per INSERT transaction during the measured load: how much group commit grouped. */
  readonly meanRowsPerTransaction: number | null;
  /** Seconds after the load until the stored count stopped growing. */
  readonly settleSeconds: number | null;
  readonly ceilingRatio: number | null;
  /** Single events only: stored events/s ÷ the run's HTTP-only ceiling. */
  readonly httpCeilingRatio: number | null;
  readonly peakRssMib: number | null;
  readonly vmHwmMib: number | null;
  readonly sampledPeakRssMib: number | null;
  readonly cpuCores: CpuCores | null;
  readonly serverProblems: readonly string[];
}

export interface RunResult {
  readonly run: number;
  readonly ceilingBefore: CeilingResult | null;
  readonly ceilingAfter: CeilingResult | null;
  readonly ceilingRowsPerSecond: number | null;
  /** The bare-uWS server's single POSTs per second (the HTTP-only ceiling), when measured. */
  readonly httpCeilingRequestsPerSecond: number | null;
  readonly commitLatencyBefore: CommitLatency | null;
  readonly commitLatencyAfter: CommitLatency | null;
  readonly scenarios: ScenarioRun[];
}

export interface ScenarioMedians {
  readonly scenario: string;
  readonly connections: number;
  readonly eventsPerRequest: number;
  readonly requestsPerSecond: number;
  readonly statusCounts: Readonly<Record<string, number>>;
  readonly errors: number;
  readonly storedEventsPerSecond: number;
  readonly ceilingRatio: number;
  readonly httpCeilingRatio: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly peakRssMib: number;
  readonly cpuCores: {
    serverMain: number;
    serverOther: number;
    /** Busiest and second-busiest non-uWS threads. */
    serverOtherTop: [number, number];
    postgres: number;
    loadGenerator: number;
    machineBusy: number;
    waiting: number;
  };
  readonly meanRowsPerTransaction: number;
  readonly serverCpuMicrosPerEvent: number;
  readonly postgresCpuMicrosPerEvent: number;
  /** Server threads and Postgres, the load generator left out. */
  readonly cpuMicrosPerStoredEvent: number;
}
