// The built server (dist/, what `npm start` runs) as a child process, so a scenario can kill -9 it,
// SIGTERM it, or start two of them against one database.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { awaitListening } from '../../helpers/server.js';

const projectRoot = fileURLToPath(new URL('../../..', import.meta.url));
const builtMain = `${projectRoot}dist/src/main.js`;

export interface ChaosServer {
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** Every line the process printed (stdout and stderr), for log assertions. */
  readonly lines: string[];
  /** Resolves with the exit code, or the signal's name. */
  readonly exited: Promise<number | string>;
}

export interface SpawnOptions {
  /** Listen on this port (a restart keeps its clients' URL); 0 → any free port. */
  readonly port?: number;
  /** Extra arguments for node before the script, e.g. `--max-old-space-size`. */
  readonly nodeArgs?: readonly string[];
  /** Run as another user (e.g. 65534 = nobody): reliability.md §3.10. */
  readonly uid?: number;
  readonly gid?: number;
}

/** Resolves once the server logs that it is listening. */
export async function spawnBuiltServer(
  dsn: string,
  env: Record<string, string> = {},
  options: SpawnOptions = {},
): Promise<ChaosServer> {
  if (!existsSync(builtMain))
    throw new Error(`${builtMain} is missing: run \`npm run build\` first (npm test does)`);
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), builtMain], {
    cwd: projectRoot,
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      PORT: String(options.port ?? 0),
      LOG_LEVEL: 'info',
      POSTGRES_DSN: dsn,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    uid: options.uid,
    gid: options.gid,
  });
  const { port, lines, exited } = await awaitListening(child);
  return { url: `http://127.0.0.1:${port}`, port, child, lines, exited };
}

/** kill -9 and wait for the exit. */
export async function killHard(server: ChaosServer): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null)
    server.child.kill('SIGKILL');
  await server.exited;
}

/** GET /readyz's status, or 0 when nothing answered (the process is down or restarting). */
export async function readyStatus(url: string): Promise<number> {
  try {
    const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}
