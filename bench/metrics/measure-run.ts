// One run of the metrics bench: the uncached scenarios, the cached ones between two bare-uWS
// ceilings, new events through POST /events/bulk and a timed refresh, then the raw scans on the
// same data and a correctness check of the 90-day answer against them.
import type pg from 'pg';
import { refreshRollup } from '../../src/sql/refresh-rollup.js';
import type { BenchDatabase } from '../lib/bench-database.js';
import { startBareUwsServer, startBenchServer, type BenchServer } from '../lib/bench-server.js';
import { driveGetLoad, type LoadResult } from '../lib/drive-load.js';
import { eventNameOf, secondsPerDay } from '../lib/metrics-dataset.js';
import { progress } from '../lib/progress.js';
import { openRawScanner, type RawDay, type RawTotals } from '../lib/raw-metrics-scan.js';
import type { MetricsOptions } from './options.js';
import { rawQueries } from './raw-queries.js';
import { fmtInt } from './report.js';
import type { Correctness, RawRun, RefreshRun, RunResult, ScenarioRun } from './results.js';
import {
  channels,
  days,
  eventNameCount,
  metricsPath,
  scenarios,
  type Scenario,
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
  const measure = async (server: BenchServer, wanted: (s: Scenario) => boolean) => {
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

  // The Go MVP's approach on the same data, after the servers are gone. The new events above are
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

function nonOk(load: LoadResult): string {
  const bad = Object.entries(load.statusCounts).filter(([s]) => s !== '200');
  const errors = load.errors + load.timeouts;
  const parts = [...bad.map(([s, n]) => `${n}× ${s}`), ...(errors > 0 ? [`${errors} errors`] : [])];
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}
