// The embedded Postgres that `npm start` runs when no DSN is given: started from the config, with
// the write-heavy settings docs/scaling.md explains and the shared_buffers the operator asked for.
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import {
  startConfiguredPostgres,
  type EmbeddedPostgresHandle,
} from '../../src/embedded/embedded-postgres.js';

let parentDir: string | undefined;
let postgres: EmbeddedPostgresHandle | undefined;

afterAll(async () => {
  await postgres?.stop();
  if (parentDir) await rm(parentDir, { recursive: true, force: true });
});

it('starts with EMBEDDED_PG_SHARED_BUFFERS_MB and the write-heavy WAL settings', async () => {
  parentDir = await mkdtemp(join(tmpdir(), 'pulse-embedded-'));
  await chmod(parentDir, 0o755); // postgres runs as user postgres and must reach the data dir
  const config = loadConfig({
    EMBEDDED_PG_DATA_DIR: join(parentDir, 'pg'),
    EMBEDDED_PG_SHARED_BUFFERS_MB: '64',
  });
  postgres = await startConfiguredPostgres(config, pino({ level: 'silent' }));
  const client = new pg.Client({ connectionString: postgres!.dsn });
  await client.connect();
  try {
    const { rows } = await client.query<Record<string, string>>(
      `SELECT current_setting('shared_buffers') AS shared_buffers,
              current_setting('max_wal_size') AS max_wal_size,
              current_setting('checkpoint_timeout') AS checkpoint_timeout,
              current_setting('wal_compression') AS wal_compression,
              current_setting('fsync') AS fsync,
              current_setting('synchronous_commit') AS synchronous_commit`,
    );
    expect(rows[0]).toEqual({
      shared_buffers: '64MB',
      max_wal_size: '2GB',
      checkpoint_timeout: '15min',
      wal_compression: 'pglz',
      fsync: 'on',
      synchronous_commit: 'on',
    });
  } finally {
    await client.end();
  }
});
