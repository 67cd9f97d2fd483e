// The built server (dist/, what `npm start` runs) as a child process, so a scenario can kill -9 it,
// SIGTERM it, or start two of them against one database.
import { launchServer, type ServerProcess } from '../../helpers/server-process.js';

export type ChaosServer = ServerProcess;

export interface SpawnOptions {
  /** Listen on this port (a restart keeps its clients' URL); 0 → any free port. */
  readonly port?: number;
  /** Extra arguments for node before the script, e.g. `--max-old-space-size`. */
  readonly nodeArgs?: readonly string[];
}

/** Resolves once the server logs that it is listening. */
export function spawnBuiltServer(
  dsn: string,
  env: Record<string, string> = {},
  options: SpawnOptions = {},
): Promise<ChaosServer> {
  return launchServer({ entry: 'built', dsn, env, ...options });
}

/** kill -9 and wait for the exit. */
export function killHard(server: ChaosServer): Promise<void> {
  return server.kill();
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
