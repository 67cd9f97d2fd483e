// The one launcher for a server child process, shared by the integration tests, the chaos
// scenarios and the benchmarks: spawn (from source through tsx, or the build), wait for the JSON
// "listening" line, keep its log lines, stop or kill it. No vitest imports: the benches use it too.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
/** What `npm start` runs. */
export const builtMain = `${projectRoot}dist/src/main.js`;
const sourceMain = 'src/main.ts';

export interface LaunchOptions {
  /** 'source': src/main.ts through tsx; 'built': dist/src/main.js; or another script that logs
   *  the same JSON "listening" line (run through tsx when it ends in .ts). */
  readonly entry: 'source' | 'built' | { readonly script: string };
  /** POSTGRES_DSN; omitted when undefined. */
  readonly dsn?: string;
  /** The test's own variables, applied last: they override the launcher's defaults. */
  readonly env?: Readonly<Record<string, string>>;
  /** Listen on this port (a restart keeps its clients' URL); 0, the default, is any free port. */
  readonly port?: number;
  /** Extra node flags before the script, e.g. `--max-old-space-size` or `--cpu-prof`. */
  readonly nodeArgs?: readonly string[];
  /** Working directory; default the checkout (a copy of the build elsewhere runs from there). */
  readonly cwd?: string;
  /** Run as another user (e.g. 65534 = nobody). */
  readonly uid?: number;
  readonly gid?: number;
  /** Give up (and stop the child) when it has not listened by then; default: wait for ever. */
  readonly startTimeoutMs?: number;
  /** How many of the latest lines `lines` keeps; default all (a long bench would grow it). */
  readonly keepLines?: number;
  /** Called with every line the child prints, for the whole of its life. */
  readonly onLine?: (line: string) => void;
}

export interface ServerProcess {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly child: ChildProcess;
  /** The lines the process printed so far (stdout and stderr), see LaunchOptions.keepLines. */
  readonly lines: string[];
  /** Resolves with the exit code, or the signal's name. */
  readonly exited: Promise<number | string>;
  /** SIGTERM (the server drains and exits), then SIGKILL if it has not exited after 20 s. */
  stop(): Promise<void>;
  /** kill -9, and wait for the exit. */
  kill(): Promise<void>;
}

/**
 * The child's whole environment. Nothing else is inherited: a stray API_KEYS, INGEST_ACK or PORT
 * in the shell running the tests would otherwise change what they check.
 */
export function serverEnvironment(
  env: Readonly<Record<string, string>>,
  port = 0,
): Record<string, string> {
  const inherited: Record<string, string> = {};
  // PATH and HOME only: what node and tsx need to run at all.
  for (const name of ['PATH', 'HOME'] as const) {
    const value = process.env[name];
    if (value !== undefined) inherited[name] = value;
  }
  // LOG_LEVEL info: the "listening" line is info, and nothing on the hot path logs at info.
  return { ...inherited, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env };
}

function spawnEntry(options: LaunchOptions): ChildProcess {
  const { entry } = options;
  let script: readonly string[];
  if (entry === 'built') {
    if (!existsSync(builtMain))
      throw new Error(`${builtMain} is missing: run \`npm run build\` first (npm test does)`);
    script = [builtMain];
  } else if (entry === 'source') script = ['--import', 'tsx', sourceMain];
  else script = entry.script.endsWith('.ts') ? ['--import', 'tsx', entry.script] : [entry.script];
  const env = serverEnvironment(
    { ...(options.dsn === undefined ? {} : { POSTGRES_DSN: options.dsn }), ...options.env },
    options.port,
  );
  return spawn(process.execPath, [...(options.nodeArgs ?? []), ...script], {
    cwd: options.cwd ?? projectRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    uid: options.uid,
    gid: options.gid,
  });
}

/** Starts a server child; resolves once it logs that it is listening, rejects (with what it
 *  printed) if it exits or times out first. */
export async function launchServer(options: LaunchOptions): Promise<ServerProcess> {
  const child = spawnEntry(options);
  const pid = child.pid;
  const lines: string[] = [];
  const keepLines = options.keepLines ?? Infinity;
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const stop = () => stopChild(child, exited);
  const listening = new Promise<number>((resolve, reject) => {
    // Every line is read to the end of the process: a full pipe would block the server's writes.
    for (const stream of [child.stdout, child.stderr]) {
      if (stream === null) continue;
      createInterface({ input: stream }).on('line', (line) => {
        lines.push(line);
        if (lines.length > keepLines) lines.shift();
        options.onLine?.(line);
        const port = listeningPort(line);
        if (port !== undefined) resolve(port);
      });
    }
    void exited.then((code) =>
      reject(new Error(`server exited (${code}) before listening:\n${lines.join('\n')}`)),
    );
  });
  let timer: NodeJS.Timeout | undefined;
  let port: number;
  try {
    const timeoutMs = options.startTimeoutMs;
    port = await (timeoutMs === undefined
      ? listening
      : Promise.race([
          listening,
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`the server did not listen within ${timeoutMs} ms`)),
              timeoutMs,
            );
          }),
        ]));
  } catch (err) {
    await stop();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  if (pid === undefined) throw new Error('the server process did not start');
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid,
    child,
    lines,
    exited,
    stop,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** The port of a JSON `"msg":"listening"` log line, or undefined for any other line. */
function listeningPort(line: string): number | undefined {
  if (!line.includes('"listening"')) return undefined;
  try {
    const entry = JSON.parse(line) as { msg?: unknown; port?: unknown };
    return entry.msg === 'listening' && typeof entry.port === 'number' ? entry.port : undefined;
  } catch {
    return undefined;
  }
}

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

/** Runs src/main.ts to completion (bounded) and returns its exit code and everything it printed. */
export function runMainToExit(
  env: Readonly<Record<string, string>>,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnEntry({ entry: 'source', env });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`main.ts did not exit within 30 s; output:\n${output}`));
    }, 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
