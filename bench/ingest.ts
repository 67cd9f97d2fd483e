// `npm run bench:ingest`: the ingest benchmark. Starts an embedded Postgres, runs each scenario
// against the BUILT server on a fresh database with unique events, counts the rows that were
// actually stored, and measures the Postgres-only ceiling before and after in the same run.
// `--url` drives a running instance instead. Results go to stdout as one Markdown table; progress
// goes to stderr. Scenarios: bench/ingest/scenarios.ts; runs: run.ts; the report: report.ts.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { pino } from 'pino';
import { readConditions } from './lib/conditions.js';
import { progress } from './lib/progress.js';
import { parseIngestOptions } from './ingest/options.js';
import { renderReport, scenarioMedians } from './ingest/report.js';
import { runIngestBench } from './ingest/run.js';
import {
  defaultUrlScenarios,
  localScenarios,
  seedStoredEventsPerSecond,
  urlScenarios,
} from './ingest/scenarios.js';

async function main(): Promise<void> {
  const options = parseIngestOptions(process.argv.slice(2));
  const conditions = readConditions();
  const log = pino({ level: 'warn', base: { component: 'bench' } }, pino.destination(2));
  const known = options.url ? urlScenarios : localScenarios;
  const wanted = options.scenarios ?? (options.url ? defaultUrlScenarios : known.map((s) => s.id));
  const unknown = wanted.filter((id) => !known.some((s) => s.id === id));
  if (unknown.length > 0) {
    console.error(
      `unknown scenario(s) ${unknown.join(', ')}; ${options.url ? '--url mode' : 'local mode'} has ${known.map((s) => s.id).join(', ')}`,
    );
    process.exit(2);
  }
  const scenarios = known.filter((s) => wanted.includes(s.id));
  const runTag = randomBytes(4).toString('hex');
  const timestamp = Math.floor(Date.now() / 1000) - 60;

  progress(
    `commit ${conditions.commit}${conditions.dirty ? ' (dirty)' : ''}, node ${conditions.node}, ${conditions.cores}× ${conditions.cpuModel}, load average ${conditions.loadAverageAtStart}`,
  );
  progress(
    `${options.runs} run(s) × [${scenarios.map((s) => s.id).join(', ')}], ${options.durationSeconds} s each at c=${options.connections}, batch ${options.batch}`,
  );

  const { runs, postgresSettings } = await runIngestBench({
    options,
    scenarios,
    runTag,
    timestamp,
    log,
  });

  const medians = scenarios.map((s) => scenarioMedians(s, runs));
  const report = renderReport(options, conditions, postgresSettings, scenarios, runs, medians);
  process.stdout.write(`${report}\n`);
  if (options.jsonPath) {
    await writeFile(
      options.jsonPath,
      `${JSON.stringify(
        {
          conditions,
          postgresSettings: postgresSettings ?? null,
          options,
          anchor: { seedStoredEventsPerSecond },
          medians,
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
