// The ingest bench's medians over runs and its Markdown report.
import type { Conditions } from '../lib/conditions.js';
import { median } from '../lib/median.js';
import type { CeilingResult } from '../lib/postgres-ceiling.js';
import type { IngestOptions } from './options.js';
import type { RunResult, ScenarioMedians, ScenarioRun } from './results.js';
import {
  ceilingBatchRows,
  ceilingConnections,
  seedStoredEventsPerSecond,
  targets,
  type Payload,
  type Scenario,
} from './scenarios.js';

export function scenarioMedians(scenario: Scenario, runs: readonly RunResult[]): ScenarioMedians {
  const rows = runs.flatMap((r) => r.scenarios.filter((s) => s.scenario === scenario.id));
  const m = (pick: (s: ScenarioRun) => number | null | undefined) =>
    median(rows.map((s) => pick(s) ?? NaN));
  const statuses = new Set(rows.flatMap((s) => Object.keys(s.load.statusCounts)));
  const statusCounts: Record<string, number> = {};
  for (const status of [...statuses].sort())
    statusCounts[status] = m((s) => s.load.statusCounts[status] ?? 0);
  const otherCores = (s: ScenarioRun) =>
    s.cpuCores ? Object.values(s.cpuCores.serverOtherByName).reduce((a, b) => a + b, 0) : null;
  const perEvent = (cores: number | null | undefined, s: ScenarioRun) =>
    cores != null && s.storedEventsPerSecond ? (cores / s.storedEventsPerSecond) * 1e6 : null;
  return {
    scenario: scenario.id,
    connections: rows[0]?.connections ?? 0,
    eventsPerRequest: rows[0]?.eventsPerRequest ?? 0,
    requestsPerSecond: m((s) => s.load.requestsPerSecond),
    statusCounts,
    errors: m((s) => s.load.errors),
    storedEventsPerSecond: m((s) => s.storedEventsPerSecond),
    ceilingRatio: m((s) => s.ceilingRatio),
    httpCeilingRatio: m((s) => s.httpCeilingRatio),
    latencyP50Ms: m((s) => s.load.latencyP50Ms),
    latencyP99Ms: m((s) => s.load.latencyP99Ms),
    peakRssMib: m((s) => s.peakRssMib),
    cpuCores: {
      serverMain: m((s) => s.cpuCores?.serverMain),
      serverOther: m(otherCores),
      serverOtherTop: [
        m((s) => s.cpuCores?.serverOtherThreads[0] ?? 0),
        m((s) => s.cpuCores?.serverOtherThreads[1] ?? 0),
      ],
      postgres: m((s) => s.cpuCores?.postgres),
      loadGenerator: m((s) => s.cpuCores?.loadGenerator),
      machineBusy: m((s) => s.cpuCores?.machineBusy),
      waiting: m((s) => s.cpuCores?.waiting),
    },
    meanRowsPerTransaction: m((s) => s.meanRowsPerTransaction),
    serverCpuMicrosPerEvent: m((s) => perEvent(s.cpuCores?.serverTotal, s)),
    postgresCpuMicrosPerEvent: m((s) => perEvent(s.cpuCores?.postgres, s)),
    cpuMicrosPerStoredEvent: m((s) =>
      s.cpuCores?.postgres != null
        ? perEvent(s.cpuCores.serverTotal + s.cpuCores.postgres, s)
        : null,
    ),
  };
}

export function renderReport(
  options: IngestOptions,
  conditions: Conditions,
  postgresSettings: Readonly<Record<string, string>> | undefined,
  scenarios: readonly Scenario[],
  runs: readonly RunResult[],
  medians: readonly ScenarioMedians[],
): string {
  const local = !options.url;
  const lines: string[] = [];
  lines.push(
    `### Ingest benchmark — medians of ${runs.length} run(s), ${options.durationSeconds} s per scenario`,
    '',
  );
  lines.push(
    '| scenario | conns | events/req | req/s | non-2xx | stored events/s | of PG ceiling | of HTTP ceiling | vs seed | p50 ms | p99 ms | peak RSS MB | target |',
    '|---|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|---|',
  );
  for (const m of medians) {
    const scenario = scenarios.find((s) => s.id === m.scenario)!;
    const non2xx = Object.entries(m.statusCounts)
      .filter(([status]) => !status.startsWith('2'))
      .map(([status, n]) => `${status}: ${fmtInt(n)}`);
    if (m.errors > 0) non2xx.push(`errors: ${fmtInt(m.errors)}`);
    const target = targets[m.scenario];
    const goMvp = seedStoredEventsPerSecond[scenario.payload];
    lines.push(
      `| ${[
        m.scenario,
        fmtInt(m.connections),
        fmtInt(m.eventsPerRequest),
        fmtInt(m.requestsPerSecond),
        non2xx.length > 0 ? non2xx.join(', ') : '0',
        Number.isNaN(m.storedEventsPerSecond) ? 'unavailable' : fmtInt(m.storedEventsPerSecond),
        fmtPercent(m.ceilingRatio),
        fmtPercent(m.httpCeilingRatio),
        scenario.connectionsFactor > 1 || Number.isNaN(m.storedEventsPerSecond)
          ? '–'
          : `${(m.storedEventsPerSecond / goMvp).toFixed(2)}×`,
        fmtMs(m.latencyP50Ms),
        fmtMs(m.latencyP99Ms),
        Number.isNaN(m.peakRssMib) ? '–' : fmtMib(m.peakRssMib),
        target && local ? `${target.text} ${target.met(m, options) ? '✅' : '❌'}` : '–',
      ].join(' | ')} |`,
    );
  }
  lines.push('');
  if (local) {
    const perRun = runs.map(
      (r) =>
        `${fmtInt(r.ceilingBefore?.rowsPerSecond ?? NaN)} → ${fmtInt(r.ceilingAfter?.rowsPerSecond ?? NaN)}`,
    );
    lines.push(
      `Postgres-only ceiling (${ceilingConnections} connections × the writers' ${ceilingBatchRows}-row INSERT, pre-built rows, ${options.ceilingSeconds} s before and after): ` +
        `**${fmtInt(median(runs.map((r) => r.ceilingRowsPerSecond ?? NaN)))} rows/s** (median of the per-run means; before → after per run: ${perRun.join('; ')}). ` +
        `"of PG ceiling" divides each run's stored events/s by that run's own ceiling. ` +
        `One-row durable commit (round trip + WAL flush), median of runs: p50 ${fmtMs(median(runs.flatMap((r) => [r.commitLatencyBefore?.p50Ms ?? NaN, r.commitLatencyAfter?.p50Ms ?? NaN])))} ms, p99 ${fmtMs(median(runs.flatMap((r) => [r.commitLatencyBefore?.p99Ms ?? NaN, r.commitLatencyAfter?.p99Ms ?? NaN])))} ms.`,
      '',
    );
    const httpCeilings = runs.map((r) => r.httpCeilingRequestsPerSecond ?? NaN);
    if (httpCeilings.some(Number.isFinite))
      lines.push(
        `HTTP-only ceiling (a bare uWS server that reads each single-event POST, parses it and answers the 202; the same load generator at c=${options.connections}, ${options.ceilingSeconds} s per run): ` +
          `**${fmtInt(median(httpCeilings))} req/s** (median; per run: ${httpCeilings.map(fmtInt).join(', ')}). "of HTTP ceiling" divides each run's stored single events/s by that run's own.`,
        '',
      );
  }
  lines.push(
    `Seed anchor (Go service, same machine kind, c=50, unique bodies): ${fmtInt(seedStoredEventsPerSecond.single)} single events/s (acknowledged before writing), ${fmtInt(seedStoredEventsPerSecond.bulk)} bulk events/s. "stored events/s" = rows counted in the database after the load ÷ load seconds${local ? '' : ' (here: GET /metrics totals.count)'}.`,
    '',
  );
  const unavailable = new Set(
    runs.flatMap((r) => r.scenarios.flatMap((x) => x.storedUnavailableReason ?? [])),
  );
  if (unavailable.size > 0)
    lines.push(`Stored events unavailable: ${[...unavailable].join('; ')}.`, '');
  const first = runs[0]?.scenarios;
  const bytes = (payload: Payload) =>
    first?.find((s) => scenarios.find((x) => x.id === s.scenario)?.payload === payload)?.bodyBytes;
  const singleBytes = bytes('single');
  const bulkBytes = bytes('bulk');
  lines.push(
    `Conditions: ${local ? 'embedded PostgreSQL' : options.url}; connections ${options.connections} (overload ${options.connections * 10}); ${options.durationSeconds} s per scenario after ${options.warmupSeconds} s warm-up; bulk batch ${options.batch}; body bytes ${singleBytes ?? '–'} single / ${bulkBytes ?? '–'} bulk; ` +
      `commit ${conditions.commit}${conditions.dirty ? ' + uncommitted changes' : ''}; node ${conditions.node}; ${conditions.cores}× ${conditions.cpuModel}, ${conditions.memoryGib} GiB; load average at start ${conditions.loadAverageAtStart}; ${conditions.startedAt}` +
      (postgresSettings
        ? `; Postgres ${postgresSettings.server_version} (shared_buffers ${postgresSettings.shared_buffers}, synchronous_commit ${postgresSettings.synchronous_commit}, fsync ${postgresSettings.fsync})`
        : '') +
      (Object.keys(options.serverEnv).length > 0
        ? `; server env ${JSON.stringify(options.serverEnv)}`
        : '') +
      (options.apiKey ? '; every request carries X-API-Key' : '') +
      (options.writeKey ? '; every request carries a stored write key (X-API-Key)' : '') +
      `. Load generator (${options.driver}${options.driver === 'wrk' ? ', one thread' : ''}) runs on the same machine.`,
  );
  if (local) {
    lines.push(
      '',
      `Where the CPU went during the load (cores busy, medians; ${conditions.cores} cores in all):`,
      '',
      '| scenario | server uWS thread | server other threads (busiest two) | Postgres | load generator | whole machine | server + Postgres waiting for a core | rows per INSERT | server µs/stored event | Postgres µs/stored event | CPU µs/stored event (server + Postgres) |',
      '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    );
    const ceilings = runs.flatMap((r) => [r.ceilingBefore, r.ceilingAfter]);
    const cm = (pick: (c: CeilingResult) => number) =>
      median(ceilings.map((c) => (c ? pick(c) : NaN)));
    lines.push(
      `| ${[
        'PG ceiling',
        '–',
        '–',
        fmtCores(cm((c) => c.cpuCores.postgres)),
        `${fmtCores(cm((c) => c.cpuCores.client))} (pg client)`,
        fmtCores(cm((c) => c.cpuCores.machineBusy)),
        '–',
        String(ceilingBatchRows),
        '–',
        fmtMicros(cm((c) => (c.cpuCores.postgres / c.rowsPerSecond) * 1e6)),
        fmtMicros(cm((c) => (c.cpuCores.postgres / c.rowsPerSecond) * 1e6)),
      ].join(' | ')} |`,
    );
    for (const m of medians) {
      const c = m.cpuCores;
      lines.push(
        `| ${[
          m.scenario,
          fmtCores(c.serverMain),
          `${fmtCores(c.serverOther)} (${fmtCores(c.serverOtherTop[0])} + ${fmtCores(c.serverOtherTop[1])})`,
          fmtCores(c.postgres),
          fmtCores(c.loadGenerator),
          fmtCores(c.machineBusy),
          fmtCores(c.waiting),
          fmtMicros(m.meanRowsPerTransaction),
          fmtMicros(m.serverCpuMicrosPerEvent),
          fmtMicros(m.postgresCpuMicrosPerEvent),
          fmtMicros(m.cpuMicrosPerStoredEvent),
        ].join(' | ')} |`,
      );
    }
    const problems = runs.flatMap((r) => r.scenarios.flatMap((s) => s.serverProblems));
    if (problems.length > 0)
      lines.push(
        '',
        `Server warnings/errors during the runs (first 5 of ${problems.length}):`,
        ...problems.slice(0, 5).map((p) => `    ${p}`),
      );
  }
  return lines.join('\n');
}

export const fmtInt = (n: number) =>
  Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–';
export const fmtMs = (n: number) => (Number.isFinite(n) ? String(Math.round(n * 10) / 10) : '–');
export const fmtMib = (n: number) => (Number.isFinite(n) ? String(Math.round(n)) : '–');
export const fmtCores = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '–');
export const fmtMicros = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '–');
export const fmtPercent = (ratio: number) =>
  Number.isFinite(ratio) ? `${Math.round(ratio * 100)}%` : '–';
