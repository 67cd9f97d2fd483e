// The metrics bench from start to finish: an embedded Postgres, the synthetic dataset, its first
// full refresh into the rollup, then every run against the built server.
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from 'pino';
import { createPool } from '../../src/sql/create-pool.js';
import { refreshRollup } from '../../src/sql/refresh-rollup.js';
import { startBenchDatabase, type BenchDatabase } from '../lib/bench-database.js';
import type { BenchServer } from '../lib/bench-server.js';
import { loadDataset, type DatasetShape, type LoadedDataset } from '../lib/metrics-dataset.js';
import { progress } from '../lib/progress.js';
import { stopOnInterrupt } from '../lib/stop-on-interrupt.js';
import { measureRun } from './measure-run.js';
import type { MetricsOptions } from './options.js';
import { fmtInt } from './report.js';
import type { InitialRefresh, RunResult } from './results.js';
import type { Windows } from './scenarios.js';

/** Statement timeout for the bench's own refreshes: the first one absorbs every row. */
const refreshTimeoutMs = 60 * 60 * 1000;
/** The first full absorption loops until a round finds nothing new; it never needs more. */
const maxInitialRefreshRounds = 5;

export interface MetricsBenchResult {
  readonly runs: RunResult[];
  readonly dataset: LoadedDataset;
  readonly initial: InitialRefresh;
  readonly postgresSettings: Readonly<Record<string, string>>;
}

export async function runMetricsBench(
  options: MetricsOptions,
  shape: DatasetShape,
  log: Logger,
): Promise<MetricsBenchResult> {
  const runTag = randomBytes(4).toString('hex');
  let database: BenchDatabase | undefined;
  let currentServer: BenchServer | undefined;
  let refreshPool: pg.Pool | undefined;
  // The pool is left to the finally below, which runs when its query fails: ending it twice throws.
  stopOnInterrupt(() => [currentServer, database]);

  let dataset: LoadedDataset;
  let initial: InitialRefresh;
  const runs: RunResult[] = [];
  try {
    progress('starting embedded PostgreSQL');
    database = await startBenchDatabase(log);
    const dsn = await database.createFresh(`metrics_${runTag}`);
    const neighbours = { projects: options.projects - 1, eventsEach: options.neighbourEvents };
    progress(
      `generating ${fmtInt(shape.events)} events${neighbours.projects > 0 ? ` and ${fmtInt(neighbours.eventsEach)} in each of ${neighbours.projects} neighbour projects` : ''}`,
    );
    dataset = await loadDataset(dsn, shape, neighbours, progress);
    progress(`dataset loaded in ${dataset.loadSeconds.toFixed(1)} s`);
    const pool = createPool(
      {
        connectionString: dsn,
        applicationName: 'pulse-bench-refresh',
        max: 2,
        connectTimeoutMs: 5000,
        statementTimeoutMs: refreshTimeoutMs,
        queryTimeoutMs: refreshTimeoutMs + 60_000,
      },
      log,
    );
    refreshPool = pool;
    initial = await absorbEverything(pool);
    const windows: Windows = { start: dataset.startSeconds, end: shape.endSeconds };

    for (let run = 1; run <= options.runs; run++) {
      const context = { options, run, runTag, windows, database, dsn, pool };
      runs.push(
        await measureRun(context, (server) => {
          currentServer = server;
        }),
      );
    }
  } finally {
    await currentServer?.stop();
    await refreshPool?.end();
    await database?.stop();
  }
  return { runs, dataset, initial, postgresSettings: database.settings };
}

/** refreshRollup until a round absorbs nothing, then checks the rollup against the table. */
export async function absorbEverything(pool: pg.Pool): Promise<InitialRefresh> {
  const started = performance.now();
  const rounds: InitialRefresh['rounds'] = [];
  for (let round = 1; round <= maxInitialRefreshRounds; round++) {
    progress(`first refresh, round ${round}`);
    const roundStarted = performance.now();
    const result = await refreshRollup(pool);
    const ms = performance.now() - roundStarted;
    if (!result.ran) throw new Error('the rollup lock is held by another process');
    rounds.push({ ms, rows: result.rows, cells: result.cells + result.hourCells });
    progress(
      `round ${round}: ${fmtInt(result.rows)} rows, ${fmtInt(result.cells)} day + ${fmtInt(result.hourCells)} hour cells in ${(ms / 1000).toFixed(1)} s`,
    );
    if (result.rows === 0) break;
  }
  const seconds = (performance.now() - started) / 1000;
  const { rows } = await pool.query<{
    cells: string;
    hour_cells: string;
    bytes: string;
    rollup_events: string;
    table_events: string;
  }>(
    `SELECT (SELECT count(*) FROM rollup_cells) AS cells,
            (SELECT count(*) FROM rollup_hour_cells) AS hour_cells,
            pg_total_relation_size('rollup_cells') + pg_total_relation_size('rollup_hour_cells') AS bytes,
            (SELECT coalesce(sum(event_count), 0) FROM rollup_cells WHERE grain = 0) AS rollup_events,
            (SELECT count(*) FROM events) AS table_events`,
  );
  const r = rows[0]!;
  const initial: InitialRefresh = {
    seconds,
    rounds,
    rollupCells: Number(r.cells),
    rollupHourCells: Number(r.hour_cells),
    rollupBytes: Number(r.bytes),
    rollupEvents: Number(r.rollup_events),
    tableEvents: Number(r.table_events),
  };
  if (initial.rollupEvents !== initial.tableEvents)
    throw new Error(
      `the rollup holds ${initial.rollupEvents} events, the table ${initial.tableEvents}`,
    );
  // Refreshing rewrites the cells; the table is then as a long-running service would have it.
  await pool.query('VACUUM (ANALYZE) rollup_cells, rollup_hour_cells, user_ids, rollup_state');
  return initial;
}
