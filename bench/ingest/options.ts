// Command-line options of the ingest bench.
import { wrkInstalled } from '../lib/drive-wrk.js';
import { flag, integer, parseBenchOptions, repeated, text } from '../lib/bench-options.js';

export interface IngestOptions {
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
  /** Local runs: a project and a stored write key in each fresh database, sent with every request. */
  readonly writeKey: boolean;
  readonly ceilingSeconds: number;
  /** KEY=VALUE pairs added to every started server's environment (e.g. INGEST_WORKERS=3). */
  readonly serverEnv: Readonly<Record<string, string>>;
  /** Extra node flags for every started server (e.g. --cpu-prof). */
  readonly serverNodeArgs: readonly string[];
  readonly driver: LoadDriver;
}

export type LoadDriver = 'autocannon' | 'wrk';

const usage = `npm run bench:ingest -- [options]
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
  --api-key KEY        sent as X-API-Key; a started server needs it too: --server-env API_KEYS=KEY
  --write-key          local: store a project and a write key in each fresh database and send it
  --ceiling-seconds S  length of each Postgres-only and HTTP-only ceiling measurement (4)
  --server-env K=V     extra environment for the started server (repeatable)
  --server-node-arg A  extra node flag for the started server, e.g. --cpu-prof (repeatable)
  --driver D           local: autocannon (default) or wrk (Debian's wrk, one thread: far less
                       CPU per request on the shared cores)`;

const table = {
  runs: integer(3, 1, 100),
  duration: integer(10, 1, 3600),
  warmup: integer(1, 0, 600),
  connections: integer(50, 1, 10_000),
  batch: integer(100, 1, 10_000),
  scenarios: text,
  json: text,
  url: text,
  'api-key': text,
  'write-key': flag,
  'ceiling-seconds': integer(4, 1, 600),
  'server-env': repeated,
  'server-node-arg': repeated,
  driver: text,
};

export function parseIngestOptions(argv: readonly string[]): IngestOptions {
  return parseBenchOptions(argv, table, usage, (values, problems) => {
    const serverEnv: Record<string, string> = {};
    for (const pair of values['server-env']) {
      const eq = pair.indexOf('=');
      if (eq <= 0) problems.push(`--server-env ${pair}: expected KEY=VALUE`);
      else serverEnv[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    const driver = values.driver ?? 'autocannon';
    if (driver !== 'autocannon' && driver !== 'wrk')
      problems.push(`--driver ${driver}: expected autocannon or wrk`);
    if (driver === 'wrk' && values.url !== undefined)
      problems.push('--driver wrk: only for a started server (--url runs use autocannon)');
    if (driver === 'wrk' && !wrkInstalled())
      problems.push('--driver wrk: wrk is not installed (apt-get install wrk)');
    if (values['write-key'] && (values.url !== undefined || values['api-key'] !== undefined))
      problems.push('--write-key: only for a started server, and instead of --api-key');
    let url = values.url;
    if (url !== undefined) {
      try {
        url = new URL(url).origin;
      } catch {
        problems.push(`--url ${url}: not a URL`);
      }
    }
    return {
      runs: values.runs,
      durationSeconds: values.duration,
      warmupSeconds: values.warmup,
      connections: values.connections,
      batch: values.batch,
      scenarios: values.scenarios
        ?.split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
      jsonPath: values.json,
      url,
      apiKey: values['api-key'],
      writeKey: values['write-key'],
      ceilingSeconds: values['ceiling-seconds'],
      serverEnv,
      serverNodeArgs: values['server-node-arg'],
      driver: driver as LoadDriver,
    };
  });
}
