// Command-line options of the metrics bench, parsed once into a frozen, validated object.
import { parseArgs } from 'node:util';

export interface MetricsBenchOptions {
  readonly events: number;
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
  readonly jsonPath: string | undefined;
}

export const usage = `npm run bench:metrics -- [options]
  --events N              synthetic events over 90 days (10000000; use 1000000 while developing)
  --runs N                repeat the measurements N times, report medians (3)
  --duration S            seconds of load per scenario (5)
  --warmup S              seconds of unmeasured load before each scenario (1; 0 = none)
  --connections N         connections for uncached scenarios (10)
  --cached-connections N  connections for cached scenarios and the bare-uWS ceiling (50)
  --raw-repeats N         executions of each raw-scan query per run (3)
  --refresh-events N      new events before the timed incremental refresh (10000)
  --json PATH             also write every result and the conditions as JSON`;

export function parseMetricsBenchOptions(argv: readonly string[]): MetricsBenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      events: { type: 'string', default: '10000000' },
      runs: { type: 'string', default: '3' },
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      connections: { type: 'string', default: '10' },
      'cached-connections': { type: 'string', default: '50' },
      'raw-repeats': { type: 'string', default: '3' },
      'refresh-events': { type: 'string', default: '10000' },
      json: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const problems: string[] = [];
  const int = (name: string, raw: string, min: number, max: number) => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max)
      problems.push(`--${name} ${raw}: expected an integer ${min}–${max}`);
    return n;
  };
  const options: MetricsBenchOptions = {
    events: int('events', values.events, 1000, 1_000_000_000),
    runs: int('runs', values.runs, 1, 100),
    durationSeconds: int('duration', values.duration, 1, 3600),
    warmupSeconds: int('warmup', values.warmup, 0, 600),
    connections: int('connections', values.connections, 1, 10_000),
    cachedConnections: int('cached-connections', values['cached-connections'], 1, 10_000),
    rawRepeats: int('raw-repeats', values['raw-repeats'], 1, 100),
    // Bulk requests carry 100 events (BULK_MAX_EVENTS); whole requests keep the count exact.
    refreshEvents: int('refresh-events', values['refresh-events'], 100, 1_000_000),
    jsonPath: values.json,
  };
  if (options.refreshEvents % 100 !== 0)
    problems.push(`--refresh-events ${options.refreshEvents}: expected a multiple of 100`);
  if (problems.length > 0) {
    console.error(`${problems.join('\n')}\n\n${usage}`);
    process.exit(2);
  }
  return Object.freeze(options);
}
