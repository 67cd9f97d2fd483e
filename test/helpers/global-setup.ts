// Starts one embedded PostgreSQL 16 for the whole run (random free port, throwaway data dir) and
// a migrated template database that each test file clones.
import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import exitHook from 'async-exit-hook';
import pg from 'pg';
import { pino } from 'pino';
import type { TestProject } from 'vitest/node';
import {
  startEmbeddedPostgres,
  type EmbeddedPostgresHandle,
} from '../../src/embedded/embedded-postgres.js';
import { createPool } from '../../src/sql/create-pool.js';
import { migrate } from '../../src/sql/migrate.js';

export const templateDatabase = 'pulse_test_template';

let postgres: EmbeddedPostgresHandle | undefined;

// embedded-postgres's exit hook answers 'beforeExit' with process.exit(0), which overwrote the
// exitCode vitest sets on failure: a run with failing tests exited 0. On 'exit' the same hook is
// called without its callback and throws (exit code 1 after a green run). Teardown stops Postgres.
for (const event of ['beforeExit', 'exit']) exitHook.unhookEvent(event);

export default async function setup(project: TestProject) {
  const log = pino({ level: 'warn' });
  const parent = await mkdtemp(join(tmpdir(), 'pulse-test-'));
  await chmod(parent, 0o755); // the postgres user, not root, must reach the data dir inside
  const dataDir = join(parent, 'pg');
  postgres = await startEmbeddedPostgres({
    dataDir,
    port: 0,
    persistent: false,
    log,
    extraFlags: ['-c', 'max_connections=300'],
  });
  const admin = new pg.Client({ connectionString: postgres.dsn });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${templateDatabase}`);
  await admin.end();
  const pool = createPool(
    {
      connectionString: withDatabase(postgres.dsn, templateDatabase),
      applicationName: 'pulse-test-setup',
      max: 1,
      connectTimeoutMs: 5000,
      statementTimeoutMs: 30_000,
      queryTimeoutMs: 60_000,
    },
    log,
  );
  await migrate(pool);
  await pool.end();
  project.provide('postgresDsn', postgres.dsn);
  return async () => {
    await postgres?.stop();
  };
}

export function withDatabase(dsn: string, database: string): string {
  const url = new URL(dsn);
  url.pathname = `/${database}`;
  return url.toString();
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgresDsn: string;
  }
}
