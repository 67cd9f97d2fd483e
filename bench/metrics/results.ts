// What the metrics bench records: per run (loads, raw scans, correctness, the timed refresh), the
// first full refresh, and the report's rows.
import type { LoadResult } from '../lib/drive-load.js';
import type { RawTotals } from '../lib/raw-metrics-scan.js';
import type { RawQueryId } from './raw-queries.js';
import type { Target } from './scenarios.js';

export interface ScenarioRun {
  readonly scenario: string;
  readonly connections: number;
  readonly load: LoadResult;
}

export interface RawRun {
  readonly query: RawQueryId;
  readonly samplesMs: number[];
}

/** One answer against the raw rows; `error` when /metrics gave no answer to compare. */
export interface Correctness {
  readonly check: string;
  readonly label: string;
  readonly error: string | null;
  readonly metricsTotals: { count: number; unique_users: number } | null;
  readonly rawTotals: RawTotals;
  readonly totalsEqual: boolean;
  readonly bucketsCompared: number;
  readonly bucketMismatches: number;
}

export interface RefreshRun {
  readonly newEvents: number;
  readonly insertSeconds: number;
  readonly refreshMs: number;
  readonly rowsAbsorbed: number;
  /** Day cells + hour cells. */
  readonly cellsWritten: number;
}

export interface RunResult {
  readonly run: number;
  readonly scenarios: ScenarioRun[];
  readonly raw: RawRun[];
  /** Empty when --scenarios left out the scans the checks need. */
  readonly checks: Correctness[];
  /** Null when --scenarios left out the refresh. */
  readonly refresh: RefreshRun | null;
}

export interface InitialRefresh {
  readonly seconds: number;
  readonly rounds: { ms: number; rows: number; cells: number }[];
  readonly rollupCells: number;
  readonly rollupHourCells: number;
  readonly rollupBytes: number;
  readonly rollupEvents: number;
  readonly tableEvents: number;
}

export interface Row {
  readonly id: string;
  readonly label: string;
  readonly connections: number | null;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly requestsPerSecond: number | null;
  /** Cached rows: median over runs of req/s over the mean of that run's two ceilings. */
  readonly shareOfBare: number | null;
  readonly target: Target | null;
  /** Null without a target, or for a share when no ceiling ran. A row with any non-200 or
   *  connection error misses its target. */
  readonly met: boolean | null;
  readonly notes: string;
}
