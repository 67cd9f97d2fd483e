// The bench's own PostgreSQL: one embedded cluster per bench run on a throwaway data dir and a free
// port, a migrated template, and a fresh database cloned from it for every measurement, so each
// scenario and each ceiling starts from the same empty table and indexes.
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import { startEmbeddedPostgres } from '../../src/embedded/embedded-postgres.js';
import { createPool } from '../../src/sql/create-pool.js';
import { migrate } from '../../src/sql/migrate.js';

const templateDatabase = 'pulse_bench_template';

export interface BenchDatabase {
  /** postgres:// DSN of the admin database; see dsnFor for the others. */
  readonly adminDsn: string;
  readonly dataDir: string;
  /** Settings that change what a commit costs, recorded with the results. */
  readonly settings: Readonly<Record<string, string>>;
  /** The postmaster's pid: its children are every backend, so their CPU is Postgres's CPU. */
  postmasterPid(): Promise<number>;
  /** A new, migrated, empty database; returns its DSN. */
  createFresh(name: string): Promise<string>;
  drop(name: string): Promise<void>;
  countEvents(dsn: string): Promise<number>;
  /** Distinct inserting transactions (the rows' txid column), i.e. writer batches that stored
   *  rows; null when the schema has no txid column. */
  countInsertTransactions(dsn: string): Promise<number | null>;
  stop(): Promise<void>;
}

export async function startBenchDatabase(log: Logger): Promise<BenchDatabase> {
  const parent = await mkdtemp(join(tmpdir(), 'pulse-bench-'));
  await chmod(parent, 0o755); // Postgres runs as user postgres, not root: it must reach the dir
  const dataDir = join(parent, 'pg');
  const postgres = await startEmbeddedPostgres({ dataDir, port: 0, persistent: false, log });
  const admin = new pg.Client({ connectionString: postgres.dsn });
  await admin.connect();
  const dsnFor = (database: string) => {
    const url = new URL(postgres.dsn);
    url.pathname = `/${database}`;
    return url.toString();
  };
  try {
    await admin.query(`CREATE DATABASE ${templateDatabase}`);
    const pool = createPool(
      {
        connectionString: dsnFor(templateDatabase),
        applicationName: 'pulse-bench-setup',
        max: 1,
        connectTimeoutMs: 5000,
        statementTimeoutMs: 30_000,
        queryTimeoutMs: 60_000,
      },
      log,
    );
    await migrate(pool);
    await pool.end();
  } catch (err) {
    await admin.end();
    await postgres.stop();
    throw err;
  }
  const settings: Record<string, string> = {};
  for (const name of [
    'server_version',
    'shared_buffers',
    'synchronous_commit',
    'fsync',
    'wal_level',
  ])
    settings[name] =
      (await admin.query<Record<string, string>>(`SHOW ${name}`)).rows[0]?.[name] ?? '';

  const quoted = (name: string) => {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a safe database name: ${name}`);
    return name;
  };
  return {
    adminDsn: postgres.dsn,
    dataDir,
    settings,
    postmasterPid: async () =>
      Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]),
    createFresh: async (name) => {
      await admin.query(`CREATE DATABASE ${quoted(name)} TEMPLATE ${templateDatabase}`);
      return dsnFor(name);
    },
    drop: async (name) => {
      await admin.query(`DROP DATABASE IF EXISTS ${quoted(name)} WITH (FORCE)`);
    },
    countEvents: async (dsn) =>
      withClient(dsn, async (client) => {
        const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
        return rows[0]?.n ?? 0;
      }),
    countInsertTransactions: async (dsn) =>
      withClient(dsn, async (client) => {
        const column = await client.query(
          "SELECT 1 FROM information_schema.columns WHERE table_name = 'events' AND column_name = 'txid'",
        );
        if (column.rowCount === 0) return null;
        const { rows } = await client.query<{ n: number }>(
          'SELECT count(DISTINCT txid)::int AS n FROM events',
        );
        return rows[0]?.n ?? 0;
      }),
    stop: async () => {
      await admin.end();
      await postgres.stop();
      await rm(parent, { recursive: true, force: true });
    },
  };
}

async function withClient<T>(dsn: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: dsn, application_name: 'pulse-bench-count' });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}
