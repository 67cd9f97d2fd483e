// `npm run bench:metrics`: the GET /metrics benchmark of issue 3. Starts an embedded Postgres,
// generates a synthetic dataset in SQL (default 10M events over the 90 days ending at today's UTC
// midnight), absorbs it into the rollup, then drives the BUILT server with autocannon: uncached
// (a METRICS_CACHE_TTL_MS=0 server, and a distinct cache key per concurrent request so single
// flight shares nothing), cached (the default 1 s TTL, one URL), the seed's raw count(DISTINCT)
// scans on the same data, and a bare-uWS ceiling. Then it times one incremental refresh after
// --refresh-events new events. Results go to stdout as Markdown; progress goes to stderr. Only
// numbers from the same run compare: this 2-core machine is shared and drifts.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import type pg from 'pg';
import { pino } from 'pino';
import { startBenchDatabase, type BenchDatabase } from './lib/bench-database.js';
import { readConditions, type Conditions } from './lib/conditions.js';
import { driveGetLoad, type LoadResult } from './lib/drive-load.js';
import { median } from './lib/median.js';
import { parseMetricsBenchOptions, type MetricsBenchOptions } from './lib/metrics-bench-options.js';
import {
  eventNameOf,
  loadDataset,
  secondsPerDay,
  type DatasetShape,
  type LoadedDataset,
} from './lib/metrics-dataset.js';
import { openRawScanner, type RawDay, type RawTotals } from './lib/raw-metrics-scan.js';
import {
  startBareUwsServer,
  startServerProcess,
  type ServerProcess,
} from './lib/server-process.js';
import { createPool } from '../src/sql/create-pool.js';
import { refreshRollup } from '../src/sql/refresh-rollup.js';

// ---------------------------------------------------------------------------------------------
// Dataset, scenarios and the issue's targets

const channels = ['web', 'ios', 'android', 'email'] as const;
const eventNameCount = 20;
const days = 90;

function datasetShape(events: number): DatasetShape {
  const todayMidnight = Math.floor(Date.now() / 1000 / secondsPerDay) * secondsPerDay;
  return {
    events,
    days,
    endSeconds: todayMidnight,
    eventNames: eventNameCount,
    channels,
    noChannelShare: 0.1,
    users: 100_000,
  };
}

/** The windows every scenario is built from. */
interface Windows {
  /** First second of the data (a UTC midnight). */
  readonly start: number;
  /** The UTC midnight the data ends at; the 90-day window is [start, end - 1]. */
  readonly end: number;
}

type ServerKind = 'uncached' | 'cached' | 'bare';

interface Scenario {
  readonly id: string;
  readonly label: string;
  readonly server: ServerKind;
  readonly connections: (o: MetricsBenchOptions) => number;
  /** A path factory: called once per scenario, the result once per request. */
  readonly paths: (w: Windows) => () => string;
  readonly notes: string;
}

const metricsPath = (params: Record<string, string | number>) =>
  `/metrics?${new URLSearchParams(
    Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]),
  ).toString()}`;

/** The uncached scenarios give every request its own cache key: single flight shares one query
 *  among concurrent requests for one key even at TTL 0. The 90-day windows start 0–86,399 s
 *  early, inside the empty day before the data, so they count exactly the same rows. */
const jitteredStart = (w: Windows, k: number) => w.start - (k % secondsPerDay);
const dayStart = (w: Windows, k: number) => w.start + (k % days) * secondsPerDay;
const lastDay = (w: Windows) => w.end - secondsPerDay;
const counter = () => {
  let k = 0;
  return () => k++;
};

const uncachedConnections = (o: MetricsBenchOptions) => o.connections;
const cachedConnections = (o: MetricsBenchOptions) => o.cachedConnections;

const scenarios: readonly Scenario[] = [
  {
    id: 'uncached-90d',
    label: '90 days, group_by=day, uncached',
    server: 'uncached',
    connections: uncachedConnections,
    paths: (w) => {
      const next = counter();
      return () => metricsPath({ from: jitteredStart(w, next()), to: w.end - 1, group_by: 'day' });
    },
    notes:
      'TTL 0 server; own cache key per request (window start jittered into the empty day before)',
  },
  {
    id: 'uncached-90d-c1',
    label: '90 days, group_by=day, uncached, one client',
    server: 'uncached',
    connections: () => 1,
    paths: (w) => {
      const next = counter();
      return () => metricsPath({ from: jitteredStart(w, next()), to: w.end - 1, group_by: 'day' });
    },
    notes: 'service time without queueing',
  },
  {
    id: 'uncached-1d',
    label: 'one whole day, uncached',
    server: 'uncached',
    connections: uncachedConnections,
    paths: (w) => {
      const next = counter();
      return () => {
        const from = dayStart(w, next());
        return metricsPath({ from, to: from + secondsPerDay - 1, group_by: 'day' });
      };
    },
    notes: 'TTL 0; cycles through the 90 days (rollup cells only)',
  },
  {
    id: 'uncached-partial',
    label: 'partial day 10:00–14:00, uncached',
    server: 'uncached',
    connections: uncachedConnections,
    paths: (w) => {
      const next = counter();
      return () => {
        const day = dayStart(w, next());
        return metricsPath({ from: day + 10 * 3600, to: day + 14 * 3600 - 1, group_by: 'day' });
      };
    },
    notes: 'TTL 0; cycles through the 90 days (raw edge rows only)',
  },
  {
    id: 'uncached-90d-name',
    label: '90 days by event_name, uncached',
    server: 'uncached',
    connections: uncachedConnections,
    paths: (w) => {
      const next = counter();
      return () => {
        const k = next();
        return metricsPath({
          event_name: eventNameOf(k % eventNameCount),
          from: jitteredStart(w, k),
          to: w.end - 1,
          group_by: 'day',
        });
      };
    },
    notes: 'TTL 0; cycles through the 20 names',
  },
  {
    id: 'uncached-90d-name-channel',
    label: '90 days by event_name+channel, uncached',
    server: 'uncached',
    connections: uncachedConnections,
    paths: (w) => {
      const next = counter();
      return () => {
        const k = next();
        return metricsPath({
          event_name: eventNameOf(k % eventNameCount),
          channel: channels[Math.floor(k / eventNameCount) % channels.length]!,
          from: jitteredStart(w, k),
          to: w.end - 1,
          group_by: 'day',
        });
      };
    },
    notes: 'TTL 0; cycles through names × channels',
  },
  {
    id: 'cached-90d',
    label: '90 days, group_by=day, cached',
    server: 'cached',
    connections: cachedConnections,
    paths: (w) => {
      const path = metricsPath({ from: w.start, to: w.end - 1, group_by: 'day' });
      return () => path;
    },
    notes: 'default 1 s TTL, one URL',
  },
  {
    id: 'cached-1d',
    label: 'one whole day, cached',
    server: 'cached',
    connections: cachedConnections,
    paths: (w) => {
      const path = metricsPath({
        from: lastDay(w),
        to: lastDay(w) + secondsPerDay - 1,
        group_by: 'day',
      });
      return () => path;
    },
    notes: 'default 1 s TTL, one URL',
  },
  {
    id: 'cached-partial',
    label: 'partial day 10:00–14:00, cached',
    server: 'cached',
    connections: cachedConnections,
    paths: (w) => {
      const path = metricsPath({
        from: lastDay(w) + 10 * 3600,
        to: lastDay(w) + 14 * 3600 - 1,
        group_by: 'day',
      });
      return () => path;
    },
    notes: 'default 1 s TTL, one URL',
  },
  {
    id: 'cached-90d-name',
    label: '90 days by event_name, cached',
    server: 'cached',
    connections: cachedConnections,
    paths: (w) => {
      const path = metricsPath({
        event_name: eventNameOf(0),
        from: w.start,
        to: w.end - 1,
        group_by: 'day',
      });
      return () => path;
    },
    notes: 'default 1 s TTL, one URL',
  },
  {
    id: 'cached-90d-name-channel',
    label: '90 days by event_name+channel, cached',
    server: 'cached',
    connections: cachedConnections,
    paths: (w) => {
      const path = metricsPath({
        event_name: eventNameOf(0),
        channel: 'web',
        from: w.start,
        to: w.end - 1,
        group_by: 'day',
      });
      return () => path;
    },
    notes: 'default 1 s TTL, one URL',
  },
  {
    id: 'bare-uws-before',
    label: 'bare uWS ceiling, before the cached scenarios',
    server: 'bare',
    connections: cachedConnections,
    paths: () => () => '/metrics',
    notes: "constant body: the cached 90-day answer's bytes",
  },
  {
    id: 'bare-uws-after',
    label: 'bare uWS ceiling, after the cached scenarios',
    server: 'bare',
    connections: cachedConnections,
    paths: () => () => '/metrics',
    notes: 'the same again: the machine drifts within minutes',
  },
];

type RawQueryId = 'raw-90d-totals' | 'raw-90d-name-totals' | 'raw-90d-per-day';
const rawQueries: readonly { id: RawQueryId; label: string; notes: string }[] = [
  {
    id: 'raw-90d-totals',
    label: "seed's raw scan: 90-day count + count(DISTINCT)",
    notes: 'direct pg, sequential',
  },
  {
    id: 'raw-90d-name-totals',
    label: "seed's raw scan: 90 days, one event_name",
    notes: 'direct pg, sequential',
  },
  {
    id: 'raw-90d-per-day',
    label: "seed's raw scan: 90 days GROUP BY day",
    notes: 'direct pg, sequential',
  },
];

const targets = {
  uncachedP99Ms: 50,
  speedUpVsRaw: 50,
  cachedShareOfBare: 0.5,
};

const baseServerEnv = {
  RATE_LIMIT_METRICS_PER_MIN: '0',
  // The bench refreshes the rollup itself and times it; the server's own refresher must not
  // absorb the new events first (its first round would come after an hour).
  ROLLUP_REFRESH_MS: '3600000',
  LOG_LEVEL: 'info',
};
const serverEnvFor: Record<Exclude<ServerKind, 'bare'>, Record<string, string>> = {
  uncached: { ...baseServerEnv, METRICS_CACHE_TTL_MS: '0' },
  cached: { ...baseServerEnv },
};

/** Statement timeout for the bench's own refreshes: the first one absorbs every row. */
const refreshTimeoutMs = 60 * 60 * 1000;
/** The first full absorption loops until a round finds nothing new; it never needs more. */
const maxInitialRefreshRounds = 5;

// ---------------------------------------------------------------------------------------------
// Results

interface ScenarioRun {
  readonly scenario: string;
  readonly connections: number;
  readonly load: LoadResult;
}

interface RawRun {
  readonly query: RawQueryId;
  readonly samplesMs: number[];
}

interface Correctness {
  readonly metricsTotals: { count: number; unique_users: number };
  readonly rawTotals: RawTotals;
  readonly totalsEqual: boolean;
  readonly bucketsCompared: number;
  readonly bucketMismatches: number;
}

interface RefreshRun {
  readonly newEvents: number;
  readonly insertSeconds: number;
  readonly refreshMs: number;
  readonly rowsAbsorbed: number;
  /** Day cells + hour cells. */
  readonly cellsWritten: number;
}

interface RunResult {
  readonly run: number;
  readonly scenarios: ScenarioRun[];
  readonly raw: RawRun[];
  readonly correctness: Correctness;
  readonly refresh: RefreshRun;
}

interface InitialRefresh {
  readonly seconds: number;
  readonly rounds: { ms: number; rows: number; cells: number }[];
  readonly rollupCells: number;
  readonly rollupHourCells: number;
  readonly rollupBytes: number;
  readonly rollupEvents: number;
  readonly tableEvents: number;
}

interface Row {
  readonly id: string;
  readonly label: string;
  readonly connections: number | null;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly requestsPerSecond: number | null;
  readonly notes: string;
}

// ---------------------------------------------------------------------------------------------

const progress = (line: string) => process.stderr.write(`[bench] ${line}\n`);

async function main(): Promise<void> {
  const options = parseMetricsBenchOptions(process.argv.slice(2));
  const conditions = readConditions();
  const log = pino({ level: 'warn', base: { component: 'bench' } }, pino.destination(2));
  const shape = datasetShape(options.events);
  const runTag = randomBytes(4).toString('hex');
  progress(
    `commit ${conditions.commit}${conditions.dirty ? ' (dirty)' : ''}, node ${conditions.node}, ${conditions.cores}× ${conditions.cpuModel}, load average ${conditions.loadAverageAtStart}`,
  );
  progress(
    `${fmtInt(shape.events)} events over ${shape.days} days; ${options.runs} run(s), ${options.durationSeconds} s per scenario, c=${options.connections} uncached / c=${options.cachedConnections} cached`,
  );

  let database: BenchDatabase | undefined;
  let currentServer: ServerProcess | undefined;
  let refreshPool: pg.Pool | undefined;
  process.once('SIGINT', () => {
    progress('interrupted: stopping the server and Postgres');
    void (async () => {
      // The pool is left to main's finally, which runs when its query fails: ending it twice throws.
      await currentServer?.stop().catch(() => undefined);
      await database?.stop().catch(() => undefined);
      process.exit(130);
    })();
  });

  let dataset: LoadedDataset;
  let initial: InitialRefresh;
  const runs: RunResult[] = [];
  try {
    progress('starting embedded PostgreSQL');
    database = await startBenchDatabase(log);
    const dsn = await database.createFresh(`metrics_${runTag}`);
    progress(`generating ${fmtInt(shape.events)} events`);
    dataset = await loadDataset(dsn, shape, progress);
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

  const rows = summarize(runs, options);
  const report = renderReport(options, conditions, database.settings, dataset, initial, runs, rows);
  process.stdout.write(`${report}\n`);
  if (runs.some((r) => !r.correctness.totalsEqual || r.correctness.bucketMismatches > 0))
    process.exitCode = 1;
  if (options.jsonPath) {
    await writeFile(
      options.jsonPath,
      `${JSON.stringify(
        {
          conditions,
          postgresSettings: database.settings,
          options,
          dataset,
          initialRefresh: initial,
          targets,
          rows,
          runs,
        },
        null,
        2,
      )}\n`,
    );
    progress(`results written to ${options.jsonPath}`);
  }
}

/** refreshRollup until a round absorbs nothing, then checks the rollup against the table. */
async function absorbEverything(pool: pg.Pool): Promise<InitialRefresh> {
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

// ---------------------------------------------------------------------------------------------
// One run

interface RunContext {
  readonly options: MetricsBenchOptions;
  readonly run: number;
  readonly runTag: string;
  readonly windows: Windows;
  readonly database: BenchDatabase;
  readonly dsn: string;
  readonly pool: pg.Pool;
}

async function measureRun(
  context: RunContext,
  setCurrentServer: (server: ServerProcess | undefined) => void,
): Promise<RunResult> {
  const { options, run, windows, dsn } = context;
  const label = `run ${run}/${options.runs}`;
  const results: ScenarioRun[] = [];
  const start = async (kind: Exclude<ServerKind, 'bare'>) => {
    const server = await startServerProcess({
      dsn,
      env: serverEnvFor[kind],
      nodeArgs: [],
      startTimeoutMs: 60_000,
    });
    setCurrentServer(server);
    return server;
  };
  const stop = async (server: ServerProcess) => {
    await server.stop();
    setCurrentServer(undefined);
    if (server.problems.length > 0)
      progress(
        `${label}: server logged ${server.problems.length} problem line(s), first: ${server.problems[0]}`,
      );
  };
  const measure = async (server: ServerProcess, wanted: (s: Scenario) => boolean) => {
    for (const scenario of scenarios.filter(wanted)) {
      const connections = scenario.connections(options);
      const nextPath = scenario.paths(windows);
      if (options.warmupSeconds > 0)
        await driveGetLoad({
          url: server.url,
          connections,
          durationSeconds: options.warmupSeconds,
          nextPath,
        });
      const load = await driveGetLoad({
        url: server.url,
        connections,
        durationSeconds: options.durationSeconds,
        nextPath,
      });
      progress(
        `${label} ${scenario.id} c=${connections}: p50 ${load.latencyP50Ms} ms, p99 ${load.latencyP99Ms} ms, ${fmtInt(load.requestsPerSecond)} req/s${nonOk(load)}`,
      );
      results.push({ scenario: scenario.id, connections, load });
    }
  };

  // Uncached server: the correctness answer first, then the uncached scenarios.
  const ninetyDays = metricsPath({ from: windows.start, to: windows.end - 1, group_by: 'day' });
  const uncached = await start('uncached');
  let answer: MetricsAnswer;
  let answerBody: string;
  try {
    ({ answer, body: answerBody } = await fetchMetrics(uncached.url, ninetyDays));
    await measure(uncached, (s) => s.server === 'uncached');
  } finally {
    await stop(uncached);
  }

  // The bare-uWS ceiling just before and just after the cached scenarios, answering their bytes.
  const ceiling = async (id: string) => {
    const bare = await startBareUwsServer({ BARE_UWS_BODY: answerBody });
    setCurrentServer(bare);
    try {
      await measure(bare, (s) => s.id === id);
    } finally {
      await stop(bare);
    }
  };
  await ceiling('bare-uws-before');
  const cached = await start('cached');
  let refresh: RefreshRun;
  try {
    await measure(cached, (s) => s.server === 'cached');
  } finally {
    await stop(cached);
  }
  await ceiling('bare-uws-after');

  // The new events go in through a server's POST /events/bulk, as a client would send them.
  const writer = await start('cached');
  try {
    refresh = await insertAndRefresh(context, writer.url);
  } finally {
    await stop(writer);
  }

  // The seed's approach on the same data, after the servers are gone. The new events above are
  // today's (outside the window) and late ones inside it: the 90-day answer is re-read below.
  const raw: RawRun[] = [];
  const scanner = await openRawScanner(dsn);
  let correctness: Correctness;
  try {
    const window = { from: windows.start, to: windows.end - 1, eventName: null };
    let rawTotals: RawTotals | undefined;
    let rawDays: RawDay[] = [];
    for (const query of rawQueries) {
      const samplesMs: number[] = [];
      for (let i = 0; i < options.rawRepeats; i++) {
        if (query.id === 'raw-90d-per-day') {
          const { ms, days: d } = await scanner.perDay(window);
          samplesMs.push(ms);
          rawDays = d;
        } else if (query.id === 'raw-90d-name-totals') {
          samplesMs.push((await scanner.totals({ ...window, eventName: eventNameOf(0) })).ms);
        } else {
          const { ms, totals } = await scanner.totals(window);
          samplesMs.push(ms);
          rawTotals = totals;
        }
        progress(`${label} ${query.id}: ${(samplesMs.at(-1)! / 1000).toFixed(2)} s`);
      }
      raw.push({ query: query.id, samplesMs });
    }
    // The rollup now holds the new events too (insertAndRefresh refreshed): compare through a
    // fresh server so the answer and the scan see the same rows.
    const checker = await start('uncached');
    try {
      ({ answer } = await fetchMetrics(checker.url, ninetyDays));
    } finally {
      await stop(checker);
    }
    correctness = compare(answer, rawTotals!, rawDays);
    progress(
      `${label} correctness: /metrics ${answer.totals.count}/${answer.totals.unique_users} vs raw ${rawTotals!.count}/${rawTotals!.uniqueUsers}; ${correctness.bucketMismatches} of ${correctness.bucketsCompared} day buckets differ`,
    );
  } finally {
    await scanner.close();
  }
  return { run, scenarios: results, raw, correctness, refresh };
}

interface MetricsAnswer {
  totals: { count: number; unique_users: number };
  buckets?: { bucket_start: number; count: number; unique_users: number }[];
}

async function fetchMetrics(
  baseUrl: string,
  path: string,
): Promise<{ answer: MetricsAnswer; body: string }> {
  const res = await fetch(new URL(path, baseUrl), { signal: AbortSignal.timeout(30_000) });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${body}`);
  return { answer: JSON.parse(body) as MetricsAnswer, body };
}

function compare(answer: MetricsAnswer, rawTotals: RawTotals, rawDays: RawDay[]): Correctness {
  const buckets = new Map((answer.buckets ?? []).map((b) => [b.bucket_start, b]));
  let mismatches = Math.abs(buckets.size - rawDays.length);
  for (const day of rawDays) {
    const b = buckets.get(day.bucketStart);
    if (!b || b.count !== day.count || b.unique_users !== day.uniqueUsers) mismatches++;
  }
  return {
    metricsTotals: answer.totals,
    rawTotals,
    totalsEqual:
      answer.totals.count === rawTotals.count &&
      answer.totals.unique_users === rawTotals.uniqueUsers,
    bucketsCompared: rawDays.length,
    bucketMismatches: mismatches,
  };
}

/** --refresh-events new events through POST /events/bulk (99% today, 1% late ones for days of
 *  the window, 5% from users the rollup has never seen), then one timed refreshRollup. */
async function insertAndRefresh(context: RunContext, baseUrl: string): Promise<RefreshRun> {
  const { options, run, runTag, windows, pool } = context;
  const now = Math.floor(Date.now() / 1000);
  const todaySpan = Math.max(1, now - windows.end);
  const started = performance.now();
  const perRequest = 100;
  for (let r = 0; r < options.refreshEvents / perRequest; r++) {
    const events = Array.from({ length: perRequest }, (_, j) => {
      const i = r * perRequest + j;
      const late = i % 100 === 0;
      const timestamp = late
        ? windows.start + Math.floor(Math.random() * days * secondsPerDay)
        : windows.end + Math.floor(Math.random() * todaySpan);
      const channel = channels[i % channels.length]!;
      return {
        event_id: `refresh-${runTag}-${run}-${i}`,
        event_name: eventNameOf(i % eventNameCount),
        user_id:
          i % 20 === 0 ? `new-${runTag}-${run}-${i}` : `u${Math.floor(Math.random() * 100_000)}`,
        timestamp,
        ...(i % 10 === 0 ? {} : { channel }),
      };
    });
    const res = await fetch(new URL('/events/bulk', baseUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ events }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (res.status !== 202) throw new Error(`POST /events/bulk answered ${res.status}: ${text}`);
  }
  const insertSeconds = (performance.now() - started) / 1000;
  const refreshStarted = performance.now();
  const result = await refreshRollup(pool);
  const refreshMs = performance.now() - refreshStarted;
  if (!result.ran) throw new Error('the rollup lock is held by another process');
  progress(
    `run ${run}: ${fmtInt(options.refreshEvents)} new events stored in ${insertSeconds.toFixed(1)} s; refresh absorbed ${fmtInt(result.rows)} rows into ${result.cells} day + ${result.hourCells} hour cells in ${refreshMs.toFixed(0)} ms`,
  );
  return {
    newEvents: options.refreshEvents,
    insertSeconds,
    refreshMs,
    rowsAbsorbed: result.rows,
    cellsWritten: result.cells + result.hourCells,
  };
}

// ---------------------------------------------------------------------------------------------
// Summary and report

function summarize(runs: readonly RunResult[], options: MetricsBenchOptions): Row[] {
  const rows: Row[] = [];
  for (const scenario of scenarios) {
    const loads = runs.flatMap((r) => r.scenarios.filter((s) => s.scenario === scenario.id));
    if (loads.length === 0) continue;
    const statuses: Record<string, number> = {};
    let errors = 0;
    for (const l of loads) {
      for (const [status, n] of Object.entries(l.load.statusCounts))
        statuses[status] = (statuses[status] ?? 0) + n;
      errors += l.load.errors + l.load.timeouts;
    }
    const bad = Object.entries(statuses).filter(([s]) => s !== '200');
    const flags = [
      ...bad.map(([s, n]) => `${fmtInt(n)}× ${s}`),
      ...(errors > 0 ? [`${fmtInt(errors)} errors/timeouts`] : []),
    ];
    rows.push({
      id: scenario.id,
      label: scenario.label,
      connections: scenario.connections(options),
      p50Ms: median(loads.map((l) => l.load.latencyP50Ms)),
      p99Ms: median(loads.map((l) => l.load.latencyP99Ms)),
      requestsPerSecond: median(loads.map((l) => l.load.requestsPerSecond)),
      notes: [scenario.notes, ...flags].join('; '),
    });
  }
  for (const query of rawQueries) {
    const perRun = runs.map((r) => r.raw.find((q) => q.query === query.id)?.samplesMs ?? []);
    rows.push({
      id: query.id,
      label: query.label,
      connections: 1,
      p50Ms: median(perRun.map((s) => median(s))),
      p99Ms: median(perRun.map((s) => Math.max(...s))),
      requestsPerSecond: null,
      notes: `${query.notes}; ${options.rawRepeats} executions per run, p99 = slowest`,
    });
  }
  return rows;
}

function renderReport(
  options: MetricsBenchOptions,
  conditions: Conditions,
  settings: Readonly<Record<string, string>>,
  dataset: LoadedDataset,
  initial: InitialRefresh,
  runs: readonly RunResult[],
  rows: readonly Row[],
): string {
  const row = (id: string) => rows.find((r) => r.id === id);
  const lines: string[] = [];
  const s = dataset.shape;
  lines.push('## GET /metrics benchmark');
  lines.push('');
  lines.push(
    `- Conditions: commit ${conditions.commit}${conditions.dirty ? ' (dirty tree)' : ''}, node ${conditions.node}, ${conditions.cores}× ${conditions.cpuModel}, ${conditions.memoryGib} GiB, load average at start ${conditions.loadAverageAtStart}, ${conditions.startedAt}`,
  );
  lines.push(
    `- Postgres: ${Object.entries(settings)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}`,
  );
  lines.push(
    `- Dataset: ${fmtInt(s.events)} events over ${s.days} days (${isoDay(dataset.startSeconds)} to ${isoDay(s.endSeconds)}, UTC midnights), ${s.eventNames} event names, ${s.channels.length} channels + ${s.noChannelShare * 100}% without, ${fmtInt(s.users)} users (uniform); table ${fmtGib(dataset.tableBytes)}, with indexes ${fmtGib(dataset.totalBytes)}; generated in ${dataset.loadSeconds.toFixed(1)} s (of which index rebuild + VACUUM ANALYZE ${dataset.indexAndVacuumSeconds.toFixed(1)} s)`,
  );
  lines.push(
    `- First full refresh: ${initial.seconds.toFixed(1)} s (${initial.rounds.map((r) => `${fmtInt(r.rows)} rows in ${(r.ms / 1000).toFixed(1)} s`).join(', then ')}); rollup ${fmtInt(initial.rollupCells)} day + ${fmtInt(initial.rollupHourCells)} hour cells, ${fmtGib(initial.rollupBytes)}`,
  );
  lines.push(
    `- Load: ${options.runs} run(s), medians shown; autocannon ${options.durationSeconds} s per scenario after ${options.warmupSeconds} s warm-up; latencies in whole ms (autocannon's resolution)`,
  );
  lines.push('');
  lines.push('| scenario | c | p50 ms | p99 ms | req/s | notes |');
  lines.push('|---|---:|---:|---:|---:|---|');
  for (const r of rows) {
    lines.push(
      `| ${r.label} | ${r.connections ?? '—'} | ${fmtMs(r.p50Ms)} | ${fmtMs(r.p99Ms)} | ${r.requestsPerSecond === null ? '—' : fmtInt(r.requestsPerSecond)} | ${r.notes} |`,
    );
  }
  lines.push('');

  const refreshes = runs.map((r) => r.refresh);
  lines.push(
    `- Refresh after ${fmtInt(options.refreshEvents)} new events (99% today, 1% late into old days, via POST /events/bulk): median ${fmtMs(median(refreshes.map((r) => r.refreshMs)))} ms (runs: ${refreshes.map((r) => `${fmtMs(r.refreshMs)} ms for ${fmtInt(r.rowsAbsorbed)} rows / ${r.cellsWritten} cells`).join('; ')}); table ≈ ${fmtInt(s.events + options.refreshEvents)} rows at the first`,
  );
  const uncached = row('uncached-90d');
  const single = row('uncached-90d-c1');
  const rawTotals = row('raw-90d-totals');
  const rawPerDay = row('raw-90d-per-day');
  const cached = row('cached-90d');
  const met = (ok: boolean) => (ok ? 'met' : '**missed**');
  if (uncached && single && rawTotals && rawPerDay) {
    const speedUp = rawTotals.p99Ms / uncached.p99Ms;
    lines.push(
      `- 90-day uncached p99: ${fmtMs(uncached.p99Ms)} ms at c=${uncached.connections}, ${fmtMs(single.p99Ms)} ms at c=1 (target ≤ ${targets.uncachedP99Ms} ms: ${met(uncached.p99Ms <= targets.uncachedP99Ms)} at c=${uncached.connections}, ${met(single.p99Ms <= targets.uncachedP99Ms)} at c=1)`,
    );
    lines.push(
      `- Speed-up vs the raw scan (raw p99 / /metrics p99): ${fmtX(speedUp)} against the totals scan at c=${uncached.connections}, ${fmtX(rawTotals.p99Ms / single.p99Ms)} at c=1; ${fmtX(rawPerDay.p99Ms / uncached.p99Ms)} / ${fmtX(rawPerDay.p99Ms / single.p99Ms)} against the per-day scan (target ≥ ${targets.speedUpVsRaw}×: ${met(speedUp >= targets.speedUpVsRaw)})`,
    );
  }
  if (cached) {
    // Per run: cached req/s over the mean of that run's two ceilings; then the median over runs.
    const shareOf = (id: string) =>
      median(
        runs.map((r) => {
          const rps = (sid: string) =>
            r.scenarios.find((x) => x.scenario === sid)?.load.requestsPerSecond ?? NaN;
          return rps(id) / ((rps('bare-uws-before') + rps('bare-uws-after')) / 2);
        }),
      );
    const share = shareOf('cached-90d');
    const others = rows
      .filter((r) => r.id.startsWith('cached-') && r.id !== 'cached-90d')
      .map((r) => `${r.id} ${fmtPct(shareOf(r.id))}`);
    lines.push(
      `- Cached 90-day req/s as a share of the bare-uWS ceiling (mean of the two around it): ${fmtPct(share)} (target ≥ ${fmtPct(targets.cachedShareOfBare)}: ${met(share >= targets.cachedShareOfBare)}); ${others.join(', ')}`,
    );
  }
  const wrong = runs.filter(
    (r) => !r.correctness.totalsEqual || r.correctness.bucketMismatches > 0,
  );
  const c = runs.at(-1)?.correctness;
  if (c)
    lines.push(
      `- Correctness: 90-day /metrics totals vs the raw scan ${wrong.length === 0 ? 'equal in every run' : `**DIFFER in ${wrong.length} run(s)**`} (last run: ${fmtInt(c.metricsTotals.count)} events, ${fmtInt(c.metricsTotals.unique_users)} users; ${c.bucketsCompared} day buckets compared, ${c.bucketMismatches} differ)`,
    );
  return lines.join('\n');
}

function nonOk(load: LoadResult): string {
  const bad = Object.entries(load.statusCounts).filter(([s]) => s !== '200');
  const errors = load.errors + load.timeouts;
  const parts = [...bad.map(([s, n]) => `${n}× ${s}`), ...(errors > 0 ? [`${errors} errors`] : [])];
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
const fmtMs = (n: number) => (Number.isFinite(n) ? (n >= 100 ? fmtInt(n) : n.toFixed(1)) : '—');
const fmtX = (n: number) => (Number.isFinite(n) ? `${fmtInt(n)}×` : '—');
const fmtPct = (n: number) => `${Math.round(n * 100)}%`;
const fmtGib = (bytes: number) =>
  bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const isoDay = (seconds: number) => new Date(seconds * 1000).toISOString().slice(0, 10);

await main();
