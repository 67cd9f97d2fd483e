// One run of the metrics bench: the uncached scenarios, the cached ones between two bare-uWS
// ceilings, new events through POST /events/bulk and a timed refresh, then the raw scans on the
// same data and the answer checks (answer-checks.ts). --scenarios leaves out what it does not name.
import type pg from 'pg';
import { refreshRollup } from '../../src/sql/refresh-rollup.js';
import type { BenchDatabase } from '../lib/bench-database.js';
import { startBareUwsServer, startBenchServer, type BenchServer } from '../lib/bench-server.js';
import { driveGetLoad, type LoadResult } from '../lib/drive-load.js';
import { eventNameOf, secondsPerDay } from '../lib/metrics-dataset.js';
import { progress } from '../lib/progress.js';
import { fetchMetrics, scanAndCheck } from './answer-checks.js';
import type { MetricsOptions } from './options.js';
import { fmtInt } from './report.js';
import type { RefreshRun, RunResult, ScenarioRun } from './results.js';
import {
  channels,
  days,
  eventNameCount,
  isSelected,
  metricsPath,
  refreshStep,
  scenarios,
  type Scenario,
  type Selectable,
  type ServerKind,
  type Windows,
} from './scenarios.js';

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

export interface RunContext {
  readonly options: MetricsOptions;
  readonly run: number;
  readonly runTag: string;
  readonly windows: Windows;
  readonly database: BenchDatabase;
  readonly dsn: string;
  readonly pool: pg.Pool;
}

export async function measureRun(
  context: RunContext,
  setCurrentServer: (server: BenchServer | undefined) => void,
): Promise<RunResult> {
  const { options, run, windows, dsn } = context;
  const label = `run ${run}/${options.runs}`;
  const results: ScenarioRun[] = [];
  const start = async (kind: Exclude<ServerKind, 'bare'>) => {
    const server = await startBenchServer({
      dsn,
      env: serverEnvFor[kind],
      nodeArgs: [],
      startTimeoutMs: 60_000,
    });
    setCurrentServer(server);
    return server;
  };
  const stop = async (server: BenchServer) => {
    await server.stop();
    setCurrentServer(undefined);
    if (server.problems.length > 0)
      progress(
        `${label}: server logged ${server.problems.length} problem line(s), first: ${server.problems[0]}`,
      );
  };
  const withServer = async <T>(
    kind: Exclude<ServerKind, 'bare'>,
    use: (s: BenchServer) => Promise<T>,
  ) => {
    const server = await start(kind);
    try {
      return await use(server);
    } finally {
      await stop(server);
    }
  };
  const selected = (s: Selectable) => isSelected(options.scenarios, s);
  const measure = async (server: BenchServer, wanted: (s: Scenario) => boolean) => {
    for (const scenario of scenarios.filter((s) => wanted(s) && selected(s))) {
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
  const anySelected = (kind: ServerKind) => scenarios.some((s) => s.server === kind && selected(s));

  // Uncached server: the 90-day answer (the ceiling's body) first, then the uncached scenarios.
  const ninetyDays = metricsPath({ from: windows.start, to: windows.end - 1, group_by: 'day' });
  const answerBody = await withServer('uncached', async (server) => {
    const { body } = await fetchMetrics(server.url, ninetyDays);
    await measure(server, (s) => s.server === 'uncached');
    return body;
  });

  // The bare-uWS ceiling just before and just after the cached scenarios, answering their bytes.
  const ceiling = async (id: string) => {
    if (!scenarios.some((s) => s.id === id && selected(s))) return;
    const bare = await startBareUwsServer({ BARE_UWS_BODY: answerBody });
    setCurrentServer(bare);
    try {
      await measure(bare, (s) => s.id === id);
    } finally {
      await stop(bare);
    }
  };
  await ceiling('bare-uws-before');
  if (anySelected('cached'))
    await withServer('cached', (server) => measure(server, (s) => s.server === 'cached'));
  await ceiling('bare-uws-after');

  // The new events go in through a server's POST /events/bulk, as a client would send them.
  const refresh = selected(refreshStep)
    ? await withServer('cached', (server) => insertAndRefresh(context, server.url))
    : null;

  // The Go MVP's approach on the same data, after the servers are gone. The new events above are
  // today's (outside the window) and late ones inside it: the checked answers are read afterwards.
  const { raw, checks } = await scanAndCheck({
    label,
    filter: options.scenarios,
    rawRepeats: options.rawRepeats,
    windows,
    dsn,
    withServer: (read) => withServer('uncached', (server) => read(server.url)),
  });
  return { run, scenarios: results, raw, checks, refresh };
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

function nonOk(load: LoadResult): string {
  const bad = Object.entries(load.statusCounts).filter(([s]) => s !== '200');
  const errors = load.errors + load.timeouts;
  const parts = [...bad.map(([s, n]) => `${n}× ${s}`), ...(errors > 0 ? [`${errors} errors`] : [])];
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}
