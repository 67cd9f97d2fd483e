// The BUILT server (dist/src/main.js) as a child process, as a user runs it: started on a free
// loopback port against a given database, sampled from /proc while it runs, stopped with SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/embedded/embedded-postgres.js';
import { readStatusKib } from './proc-stats.js';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
const mainScript = fileURLToPath(new URL('../../dist/src/main.js', import.meta.url));
const bareUwsScript = fileURLToPath(new URL('./bare-uws-server.ts', import.meta.url));

export interface ServerProcess {
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

export interface ServerProcessOptions {
  readonly dsn: string;
  readonly env: Readonly<Record<string, string>>;
  /** Extra node flags, e.g. --cpu-prof --cpu-prof-dir=/tmp/prof. */
  readonly nodeArgs: readonly string[];
  readonly startTimeoutMs: number;
  /** Another entry point that logs the same JSON "listening" line (the bare-uWS ceiling);
   *  default dist/src/main.js. */
  readonly script?: string;
}

const pinoLevelWarn = 40;

export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const port = await freePort();
  // A clean environment: nothing from the shell (API_KEYS, DATABASE_URL…) changes what is measured.
  const child = spawn(process.execPath, [...options.nodeArgs, options.script ?? mainScript], {
    cwd: projectRoot,
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: String(port),
      POSTGRES_DSN: options.dsn,
      LOG_LEVEL: 'info', // the "listening" line is info; nothing on the hot path logs at info
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('the server process did not start');
  const problems: string[] = [];
  const recent: string[] = [];
  let peakSampledRssKib = 0;
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const listening = new Promise<void>((resolve, reject) => {
    // Every line is read to the end of the process: a full pipe would block the server's writes.
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        recent.push(line);
        if (recent.length > 20) recent.shift();
        let entry: { msg?: string; level?: number; port?: number } | undefined;
        try {
          entry = JSON.parse(line) as typeof entry;
        } catch {
          entry = undefined;
        }
        if (entry?.msg === 'listening') resolve();
        else if (entry === undefined || (entry.level ?? 0) >= pinoLevelWarn) {
          if (problems.length < 50) problems.push(line);
        }
      });
    }
    void exited.then((code) =>
      reject(new Error(`the server exited (${code}) before listening:\n${recent.join('\n')}`)),
    );
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      listening,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`the server did not listen within ${options.startTimeoutMs} ms`)),
          options.startTimeoutMs,
        );
      }),
    ]);
  } catch (err) {
    await stopChild(child, exited);
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return {
    url: `http://127.0.0.1:${port}`,
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
    stop: () => stopChild(child, exited),
  };
}

/** SIGTERM (the server drains and exits), then SIGKILL if it has not exited after 20 s. */
async function stopChild(child: ChildProcess, exited: Promise<number | string>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const killed = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), 20_000);
    }),
  ]);
  clearTimeout(timer);
  if (killed) {
    child.kill('SIGKILL');
    await exited;
  }
}

/** The bare-uWS ceiling's server (bench/lib/bare-uws-server.ts), run from source through tsx. */
export function startBareUwsServer(env: Readonly<Record<string, string>>): Promise<ServerProcess> {
  return startServerProcess({
    dsn: '',
    env,
    nodeArgs: ['--import', 'tsx'],
    startTimeoutMs: 30_000,
    script: bareUwsScript,
  });
}
