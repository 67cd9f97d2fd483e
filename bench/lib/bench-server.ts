// The BUILT server (dist/src/main.js) as a child process, as a user runs it: started on a free
// loopback port against a given database, sampled from /proc while it runs, stopped with SIGTERM.
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/embedded/embedded-postgres.js';
import { launchServer } from '../../test/helpers/server-process.js';
import { readStatusKib } from './proc-stats.js';

const bareUwsScript = fileURLToPath(new URL('./bare-uws-server.ts', import.meta.url));

export interface BenchServer {
  readonly url: string;
  readonly pid: number;
  /** warn/error/fatal log lines seen so far (the hot path logs none unless something failed). */
  readonly problems: string[];
  /** Largest VmRSS seen by sampleRss, KiB. */
  readonly peakSampledRssKib: number;
  /** Start sampling VmRSS every intervalMs; returns a function that stops it. */
  sampleRss(intervalMs: number): () => void;
  stop(): Promise<void>;
}

export interface BenchServerOptions {
  /** undefined for a server that needs no database (the bare-uWS ceiling). */
  readonly dsn: string | undefined;
  readonly env: Readonly<Record<string, string>>;
  /** Extra node flags, e.g. --cpu-prof --cpu-prof-dir=/tmp/prof. */
  readonly nodeArgs: readonly string[];
  readonly startTimeoutMs: number;
  /** Another entry point that logs the same JSON "listening" line (the bare-uWS ceiling);
   *  default dist/src/main.js. */
  readonly script?: string;
}

const pinoLevelWarn = 40;
const maxProblems = 50;

export async function startBenchServer(options: BenchServerOptions): Promise<BenchServer> {
  const problems: string[] = [];
  const server = await launchServer({
    entry: options.script === undefined ? 'built' : { script: options.script },
    dsn: options.dsn,
    env: options.env,
    port: await freePort(),
    nodeArgs: options.nodeArgs,
    startTimeoutMs: options.startTimeoutMs,
    keepLines: 20,
    onLine: (line) => {
      if (problems.length < maxProblems && isProblem(line)) problems.push(line);
    },
  });
  const { pid } = server;
  let peakSampledRssKib = 0;
  return {
    url: server.url,
    pid,
    problems,
    get peakSampledRssKib() {
      return peakSampledRssKib;
    },
    sampleRss: (intervalMs) => {
      const sample = () => {
        peakSampledRssKib = Math.max(peakSampledRssKib, readStatusKib(pid, 'VmRSS') ?? 0);
      };
      sample();
      const interval = setInterval(sample, intervalMs);
      return () => {
        clearInterval(interval);
        sample();
      };
    },
    stop: () => server.stop(),
  };
}

/** A line that is not pino JSON, or one at warn and above. */
function isProblem(line: string): boolean {
  try {
    const entry = JSON.parse(line) as { level?: number };
    return (entry.level ?? 0) >= pinoLevelWarn;
  } catch {
    return true;
  }
}

/** The bare-uWS ceiling's server (bench/lib/bare-uws-server.ts), run from source through tsx. */
export function startBareUwsServer(env: Readonly<Record<string, string>>): Promise<BenchServer> {
  return startBenchServer({
    dsn: undefined,
    env,
    nodeArgs: [],
    startTimeoutMs: 30_000,
    script: bareUwsScript,
  });
}
