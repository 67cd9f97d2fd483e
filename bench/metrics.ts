// `npm run bench:metrics`: the GET /metrics benchmark. Starts an embedded Postgres, generates a
// synthetic dataset in SQL (default 10M events over the 90 days ending at today's UTC midnight),
// absorbs it into the rollup, then drives the BUILT server with autocannon: uncached (a
// METRICS_CACHE_TTL_MS=0 server, and a distinct cache key per concurrent request so single flight
// shares nothing), including local-time buckets and breakdowns, cached (the default 1 s TTL, one
// URL), the Go MVP's raw count(DISTINCT) scans on the same data, and a bare-uWS ceiling. Then it
// times one incremental refresh after --refresh-events new events and checks the 90-day answers
// (UTC and local days) against the raw rows. Each row prints its target and whether it was met.
// Results go to stdout as Markdown; progress goes to stderr. Only numbers from the same run
// compare. Scenarios and targets: bench/metrics/scenarios.ts; one run: measure-run.ts; the checks:
// answer-checks.ts; the report: report.ts. --scenarios runs a subset.
import { writeFile } from 'node:fs/promises';
import { pino } from 'pino';
import { readConditions } from './lib/conditions.js';
import { progress } from './lib/progress.js';
import { parseMetricsOptions } from './metrics/options.js';
import { fmtInt, renderReport, summarize, targets } from './metrics/report.js';
import { runMetricsBench } from './metrics/run.js';
import { datasetShape } from './metrics/scenarios.js';

async function main(): Promise<void> {
  const options = parseMetricsOptions(process.argv.slice(2));
  const conditions = readConditions();
  const log = pino({ level: 'warn', base: { component: 'bench' } }, pino.destination(2));
  const shape = datasetShape(options.events);
  progress(
    `commit ${conditions.commit}${conditions.dirty ? ' (dirty)' : ''}, node ${conditions.node}, ${conditions.cores}× ${conditions.cpuModel}, load average ${conditions.loadAverageAtStart}`,
  );
  progress(
    `${fmtInt(shape.events)} events over ${shape.days} days; ${options.runs} run(s), ${options.durationSeconds} s per scenario, c=${options.connections} uncached / c=${options.cachedConnections} cached`,
  );

  const { runs, dataset, initial, postgresSettings } = await runMetricsBench(options, shape, log);

  const rows = summarize(runs, options);
  const report = renderReport(options, conditions, postgresSettings, dataset, initial, runs, rows);
  process.stdout.write(`${report}\n`);
  if (runs.some((r) => r.checks.some((c) => !c.totalsEqual || c.bucketMismatches > 0)))
    process.exitCode = 1;
  if (options.jsonPath) {
    await writeFile(
      options.jsonPath,
      `${JSON.stringify(
        {
          conditions,
          postgresSettings,
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

await main();
