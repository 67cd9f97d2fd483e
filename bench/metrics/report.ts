// The metrics bench's summary rows (medians over runs) and its Markdown report.
import type { Conditions } from '../lib/conditions.js';
import type { LoadedDataset } from '../lib/metrics-dataset.js';
import { median } from '../lib/median.js';
import type { MetricsOptions } from './options.js';
import { rawQueries } from './raw-queries.js';
import type { InitialRefresh, Row, RunResult } from './results.js';
import { scenarios, type Target } from './scenarios.js';

export const targets = {
  uncachedP99Ms: 50,
  speedUpVsRaw: 50,
  cachedShareOfBare: 0.5,
};

export function summarize(runs: readonly RunResult[], options: MetricsOptions): Row[] {
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
    const p99Ms = median(loads.map((l) => l.load.latencyP99Ms));
    const share = scenario.server === 'cached' ? shareOfBare(runs, scenario.id) : NaN;
    const shareOrNull = Number.isFinite(share) ? share : null;
    const { target } = scenario;
    const reached =
      target === null
        ? null
        : 'p99Ms' in target
          ? p99Ms <= target.p99Ms
          : shareOrNull === null
            ? null
            : shareOrNull >= target.shareOfBare;
    rows.push({
      id: scenario.id,
      label: scenario.label,
      connections: scenario.connections(options),
      p50Ms: median(loads.map((l) => l.load.latencyP50Ms)),
      p99Ms,
      requestsPerSecond: median(loads.map((l) => l.load.requestsPerSecond)),
      shareOfBare: shareOrNull,
      target,
      // A fast 400 is no answer: any other status or a lost request misses the target.
      met: reached === null ? null : reached && flags.length === 0,
      notes: [scenario.notes, ...flags].join('; '),
    });
  }
  for (const query of rawQueries) {
    const perRun = runs.flatMap((r) => r.raw.filter((q) => q.query === query.id));
    if (perRun.length === 0) continue;
    rows.push({
      id: query.id,
      label: query.label,
      connections: 1,
      p50Ms: median(perRun.map((q) => median(q.samplesMs))),
      p99Ms: median(perRun.map((q) => Math.max(...q.samplesMs))),
      requestsPerSecond: null,
      shareOfBare: null,
      target: null,
      met: null,
      notes: `${query.notes}; ${options.rawRepeats} executions per run, p99 = slowest`,
    });
  }
  return rows;
}

/** Per run: the scenario's req/s over the mean of that run's two ceilings; the median over runs
 *  (NaN when the ceilings were not run). */
function shareOfBare(runs: readonly RunResult[], id: string): number {
  return median(
    runs.map((r) => {
      const rps = (sid: string) =>
        r.scenarios.find((x) => x.scenario === sid)?.load.requestsPerSecond ?? NaN;
      return rps(id) / ((rps('bare-uws-before') + rps('bare-uws-after')) / 2);
    }),
  );
}

export function renderReport(
  options: MetricsOptions,
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
    `- Dataset: ${fmtInt(s.events)} events${projectsNote(dataset)} over ${s.days} days (${isoDay(dataset.startSeconds)} to ${isoDay(s.endSeconds)}, UTC midnights), ${s.eventNames} event names, ${s.channels.length} channels + ${s.noChannelShare * 100}% without, ${fmtInt(s.users)} users (uniform); table ${fmtGib(dataset.tableBytes)}, with indexes ${fmtGib(dataset.totalBytes)}; generated in ${dataset.loadSeconds.toFixed(1)} s (of which index rebuild + VACUUM ANALYZE ${dataset.indexAndVacuumSeconds.toFixed(1)} s)`,
  );
  lines.push(
    `- First full refresh: ${initial.seconds.toFixed(1)} s (${initial.rounds.map((r) => `${fmtInt(r.rows)} rows in ${(r.ms / 1000).toFixed(1)} s`).join(', then ')}); rollup ${fmtInt(initial.rollupCells)} day + ${fmtInt(initial.rollupHourCells)} hour cells, ${fmtGib(initial.rollupBytes)}`,
  );
  lines.push(
    `- Load: ${options.runs} run(s), medians shown; autocannon ${options.durationSeconds} s per scenario after ${options.warmupSeconds} s warm-up; latencies in whole ms (autocannon's resolution)${options.scenarios ? `; only --scenarios ${options.scenarios.join(',')}` : ''}`,
  );
  lines.push('');
  lines.push('| scenario | c | p50 ms | p99 ms | req/s | target | met | notes |');
  lines.push('|---|---:|---:|---:|---:|---|---|---|');
  for (const r of rows) {
    lines.push(
      `| ${r.label} | ${r.connections ?? '—'} | ${fmtMs(r.p50Ms)} | ${fmtMs(r.p99Ms)} | ${r.requestsPerSecond === null ? '—' : fmtInt(r.requestsPerSecond)} | ${fmtTarget(r.target)} | ${fmtMet(r)} | ${r.notes} |`,
    );
  }
  lines.push('');
  const held = rows.filter((r) => r.target !== null);
  const missed = held.filter((r) => r.met !== true);
  lines.push(
    `- Targets: ${held.length - missed.length} of ${held.length} rows met${missed.length > 0 ? `; not met: ${missed.map((r) => `${r.id} (${r.met === null ? 'no ceiling run' : 'missed'})`).join(', ')}` : ''}`,
  );

  const refreshes = runs.flatMap((r) => (r.refresh ? [r.refresh] : []));
  if (refreshes.length > 0)
    lines.push(
      `- Refresh after ${fmtInt(options.refreshEvents)} new events (99% today, 1% late into old days, via POST /events/bulk): median ${fmtMs(median(refreshes.map((r) => r.refreshMs)))} ms (runs: ${refreshes.map((r) => `${fmtMs(r.refreshMs)} ms for ${fmtInt(r.rowsAbsorbed)} rows / ${r.cellsWritten} cells`).join('; ')}); table ≈ ${fmtInt(s.events + options.refreshEvents)} rows at the first`,
    );
  const uncached = row('uncached-90d');
  const single = row('uncached-90d-c1');
  const rawTotals = row('raw-90d-totals');
  const rawPerDay = row('raw-90d-per-day');
  const cachedShare = row('cached-90d')?.shareOfBare ?? null;
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
  if (cachedShare !== null) {
    const share = cachedShare;
    const others = rows
      .filter((r) => r.id.startsWith('cached-') && r.id !== 'cached-90d')
      .map((r) => `${r.id} ${fmtPct(r.shareOfBare ?? NaN)}`);
    lines.push(
      `- Cached 90-day req/s as a share of the bare-uWS ceiling (mean of the two around it): ${fmtPct(share)} (target ≥ ${fmtPct(targets.cachedShareOfBare)}: ${met(share >= targets.cachedShareOfBare)}); ${others.join(', ')}`,
    );
  }
  const checks = runs.flatMap((r) => r.checks);
  if (checks.length === 0)
    lines.push('- Correctness: not checked (--scenarios left out the scans the checks need)');
  for (const id of new Set(checks.map((c) => c.check))) {
    const all = checks.filter((c) => c.check === id);
    const wrong = all.filter((c) => !c.totalsEqual || c.bucketMismatches > 0);
    const c = all.at(-1)!;
    lines.push(
      `- Correctness, ${c.label}: /metrics vs the raw rows ${wrong.length === 0 ? `equal in ${all.length === runs.length ? 'every run' : `${all.length} run(s)`}` : `**DIFFER in ${wrong.length} run(s)**`} (last run: ${c.error ?? `${fmtInt(c.metricsTotals?.count ?? NaN)} events, ${fmtInt(c.metricsTotals?.unique_users ?? NaN)} users`}; ${c.bucketsCompared} day buckets compared, ${c.bucketMismatches} differ)`,
    );
  }
  return lines.join('\n');
}

export const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
const fmtMs = (n: number) => (Number.isFinite(n) ? (n >= 100 ? fmtInt(n) : n.toFixed(1)) : '—');
const fmtX = (n: number) => (Number.isFinite(n) ? `${fmtInt(n)}×` : '—');
const fmtPct = (n: number) => (Number.isFinite(n) ? `${Math.round(n * 100)}%` : '—');
const fmtTarget = (t: Target | null) =>
  t === null ? '—' : 'p99Ms' in t ? `p99 ≤ ${t.p99Ms} ms` : `≥ ${fmtPct(t.shareOfBare)} of ceiling`;
const fmtMet = (r: Row) => {
  if (r.target === null) return '—';
  if (r.met === null) return 'no ceiling run';
  const share = r.shareOfBare === null ? '' : ` (${fmtPct(r.shareOfBare)})`;
  return `${r.met ? 'met' : '**missed**'}${share}`;
};
const fmtGib = (bytes: number) =>
  bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const isoDay = (seconds: number) => new Date(seconds * 1000).toISOString().slice(0, 10);

/** Where the queried events sit among other projects' (--projects). */
function projectsNote({ neighbours }: LoadedDataset): string {
  if (neighbours.projects === 0) return '';
  return ` in one project among ${neighbours.projects + 1} (every query reads that one; ${fmtInt(neighbours.eventsEach)} in each other project, same shape)`;
}
