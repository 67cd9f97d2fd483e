// Starting the real server for tests: in this process (fast, most suites) or as a child process
// (for kill -9 and SIGTERM), always over real HTTP on 127.0.0.1 and a free port.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config.js';
import { startService, type Service } from '../../src/service.js';
import { watchResponses, type OpenApiDocument } from './contract.js';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface TestServer {
  readonly url: string;
  readonly service: Service;
  stop(): Promise<void>;
}

export async function startTestServer(
  dsn: string,
  env: Record<string, string> = {},
): Promise<TestServer> {
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'silent',
    POSTGRES_DSN: dsn,
    ...env,
  });
  const service = await startService(config, pino({ level: config.logLevel }));
  const url = `http://127.0.0.1:${service.port}`;
  // Every fetch to this server is checked against the document it serves (test/helpers/contract.ts);
  // stop() throws if any response broke it.
  const document = parseYaml(await (await fetch(`${url}/openapi.yaml`)).text()) as OpenApiDocument;
  const unwatch = watchResponses(url, document);
  return {
    url,
    service,
    stop: async () => {
      await service.shutdown();
      unwatch();
    },
  };
}

export interface ServerProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Every log line the process printed so far (stdout and stderr). */
  readonly lines: string[];
  /** Resolves with the exit code (or signal name). */
  readonly exited: Promise<number | string>;
}

/** Runs src/main.ts in its own process; resolves once it logs that it is listening. */
export async function spawnServer(
  dsn: string,
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: projectRoot,
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      POSTGRES_DSN: dsn,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { port, lines, exited } = await awaitListening(child);
  return { url: `http://127.0.0.1:${port}`, child, lines, exited };
}

/** Collects a server child's log lines; resolves with its port once it logs that it listens,
 *  rejects (with everything it printed) if it exits first. */
export async function awaitListening(child: ChildProcess): Promise<{
  port: number;
  lines: string[];
  exited: Promise<number | string>;
}> {
  const lines: string[] = [];
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const port = await new Promise<number>((resolve, reject) => {
    for (const stream of [child.stdout, child.stderr]) {
      if (stream === null) continue;
      createInterface({ input: stream }).on('line', (line) => {
        lines.push(line);
        const match = /"port":(\d+).*"msg":"listening"/.exec(line);
        if (match) resolve(Number(match[1]));
      });
    }
    void exited.then((code) =>
      reject(new Error(`server exited (${code}) before listening:\n${lines.join('\n')}`)),
    );
  });
  return { port, lines, exited };
}

/** Runs src/main.ts to completion (bounded) and returns its exit code and everything it printed. */
export function runMainToExit(
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: projectRoot,
      env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
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
