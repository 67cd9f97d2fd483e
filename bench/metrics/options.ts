// Command-line options of the metrics bench.
import { integer, parseBenchOptions, text } from '../lib/bench-options.js';
import { localDayChecks } from './answer-checks.js';
import { rawQueries } from './raw-queries.js';
import { refreshStep, scenarios, type ScenarioGroup } from './scenarios.js';

export interface MetricsOptions {
  readonly events: number;
  /** Projects in the database: the main dataset in the default one, neighbours in the others. */
  readonly projects: number;
  readonly neighbourEvents: number;
  readonly runs: number;
  readonly durationSeconds: number;
  readonly warmupSeconds: number;
  /** Connections for the uncached scenarios (the c=1 line aside). */
  readonly connections: number;
  /** Connections for the cached scenarios and the bare-uWS ceiling. */
  readonly cachedConnections: number;
  /** Raw-scan executions per query per run. */
  readonly rawRepeats: number;
  /** New events inserted before the timed incremental refresh, per run. */
  readonly refreshEvents: number;
  /** The ids and groups --scenarios named; null runs every step. */
  readonly scenarios: readonly string[] | null;
  readonly jsonPath: string | undefined;
}

const groups: readonly ScenarioGroup[] = ['local-time', 'ceiling', 'raw'];
const steps = [...scenarios, ...rawQueries, ...localDayChecks, refreshStep];

const usage = `npm run bench:metrics -- [options]
  --events N              synthetic events over 90 days (10000000; use 1000000 while developing)
  --projects N            projects holding data (1): the events above in the default project,
                          which every scenario queries, and --neighbour-events in each other one
  --neighbour-events N    events in each neighbour project, same shape (100000)
  --runs N                repeat the measurements N times, report medians (3)
  --duration S            seconds of load per scenario (5)
  --warmup S              seconds of unmeasured load before each scenario (1; 0 = none)
  --connections N         connections for uncached scenarios (10)
  --cached-connections N  connections for cached scenarios and the bare-uWS ceiling (50)
  --raw-repeats N         executions of each raw-scan query per run (3)
  --refresh-events N      new events before the timed incremental refresh (10000)
  --scenarios LIST        run only these steps, comma-separated ids or groups (all):
                          local-time  the uncached local-time and breakdown rows, their answer checks
                          ceiling     cached-90d, cached-90d-new-york, both bare-uWS ceilings
                          raw         the raw scans (and the 90-day UTC answer check)
                          refresh     the timed incremental refresh
                          ids: ${steps.map((s) => s.id).join(', ')}
  --json PATH             also write every result and the conditions as JSON`;

const table = {
  events: integer(10_000_000, 1000, 1_000_000_000),
  projects: integer(1, 1, 1000),
  'neighbour-events': integer(100_000, 1000, 1_000_000_000),
  runs: integer(3, 1, 100),
  duration: integer(5, 1, 3600),
  warmup: integer(1, 0, 600),
  connections: integer(10, 1, 10_000),
  'cached-connections': integer(50, 1, 10_000),
  'raw-repeats': integer(3, 1, 100),
  // Bulk requests carry 100 events (BULK_MAX_EVENTS); whole requests keep the count exact.
  'refresh-events': integer(10_000, 100, 1_000_000),
  scenarios: text,
  json: text,
};

export function parseMetricsOptions(argv: readonly string[]): MetricsOptions {
  return parseBenchOptions(argv, table, usage, (values, problems) => {
    if (values['refresh-events'] % 100 !== 0)
      problems.push(`--refresh-events ${values['refresh-events']}: expected a multiple of 100`);
    const named = values.scenarios?.split(',').map((name) => name.trim()) ?? null;
    const known = new Set<string>([...groups, ...steps.map((s) => s.id)]);
    for (const name of named ?? [])
      if (!known.has(name)) problems.push(`--scenarios: no step or group named "${name}"`);
    return {
      events: values.events,
      projects: values.projects,
      neighbourEvents: values['neighbour-events'],
      runs: values.runs,
      durationSeconds: values.duration,
      warmupSeconds: values.warmup,
      connections: values.connections,
      cachedConnections: values['cached-connections'],
      rawRepeats: values['raw-repeats'],
      refreshEvents: values['refresh-events'],
      scenarios: named,
      jsonPath: values.json,
    };
  });
}
