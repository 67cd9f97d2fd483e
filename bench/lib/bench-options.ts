// Command-line options of the ingest bench, parsed once into a frozen, validated object.
import { parseArgs } from 'node:util';

export interface BenchOptions {
  readonly runs: number;
  readonly durationSeconds: number;
  readonly warmupSeconds: number;
  readonly connections: number;
  readonly batch: number;
  /** undefined → the mode's default list. */
  readonly scenarios: readonly string[] | undefined;
  readonly jsonPath: string | undefined;
  /** Drive a running instance instead of starting one. */
  readonly url: string | undefined;
  readonly apiKey: string | undefined;
  readonly ceilingSeconds: number;
  /** KEY=VALUE pairs added to every started server's environment (e.g. INGEST_WORKERS=3). */
  readonly serverEnv: Readonly<Record<string, string>>;
  /** Extra node flags for every started server (e.g. --cpu-prof). */
  readonly serverNodeArgs: readonly string[];
}

export const usage = `npm run bench:ingest -- [options]
  --runs N             repeat everything N times, report medians (3)
  --duration S         seconds of load per scenario (10)
  --warmup S           seconds of unmeasured load before each scenario (1; 0 = none)
  --connections N      concurrent connections (50; overload uses 10x)
  --batch N            events per bulk request (100)
  --scenarios a,b      local: single-durable,single-queued,bulk100-durable,overload,
                       overload-large (512 KiB events)
                       --url: single,bulk,overload (default single,bulk)
  --json PATH          also write every result and the conditions as JSON
  --url URL            drive a running instance (no ceiling, stored events from its /metrics)
  --api-key KEY        sent as X-API-Key with --url
  --ceiling-seconds S  length of each Postgres-only and HTTP-only ceiling measurement (4)
  --server-env K=V     extra environment for the started server (repeatable)
  --server-node-arg A  extra node flag for the started server, e.g. --cpu-prof (repeatable)`;

export function parseBenchOptions(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      runs: { type: 'string', default: '3' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '1' },
      connections: { type: 'string', default: '50' },
      batch: { type: 'string', default: '100' },
      scenarios: { type: 'string' },
      json: { type: 'string' },
      url: { type: 'string' },
      'api-key': { type: 'string' },
      'ceiling-seconds': { type: 'string', default: '4' },
      'server-env': { type: 'string', multiple: true, default: [] },
      'server-node-arg': { type: 'string', multiple: true, default: [] },
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
  const serverEnv: Record<string, string> = {};
  for (const pair of values['server-env']) {
    const eq = pair.indexOf('=');
    if (eq <= 0) problems.push(`--server-env ${pair}: expected KEY=VALUE`);
    else serverEnv[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  let url = values.url;
  if (url !== undefined) {
    try {
      url = new URL(url).origin;
    } catch {
      problems.push(`--url ${url}: not a URL`);
    }
  }
  const options: BenchOptions = {
    runs: int('runs', values.runs, 1, 100),
    durationSeconds: int('duration', values.duration, 1, 3600),
    warmupSeconds: int('warmup', values.warmup, 0, 600),
    connections: int('connections', values.connections, 1, 10_000),
    batch: int('batch', values.batch, 1, 10_000),
    scenarios: values.scenarios
      ?.split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
    jsonPath: values.json,
    url,
    apiKey: values['api-key'],
    ceilingSeconds: int('ceiling-seconds', values['ceiling-seconds'], 1, 600),
    serverEnv,
    serverNodeArgs: values['server-node-arg'],
  };
  if (problems.length > 0) {
    console.error(`${problems.join('\n')}\n\n${usage}`);
    process.exit(2);
  }
  return Object.freeze(options);
}
