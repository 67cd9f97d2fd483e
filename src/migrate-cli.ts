// `npm run migrate`: apply pending migrations without starting the server.
import { ConfigError, loadConfig } from './config.js';
import { startConfiguredPostgres } from './embedded/embedded-postgres.js';
import { createPool } from './sql/create-pool.js';
import { migrate } from './sql/migrate.js';
import { createLogger } from './service.js';

try {
  const config = loadConfig();
  const log = createLogger(config);
  const embedded = await startConfiguredPostgres(config, log);
  const pool = createPool(
    {
      connectionString: config.postgresDsn ?? embedded!.dsn,
      applicationName: 'pulse-migrate',
      max: 1,
      connectTimeoutMs: config.pgConnectTimeoutMs,
      // A migration may rewrite a large table: far longer limits than a request gets.
      statementTimeoutMs: config.pgStatementTimeoutMs * 100,
      queryTimeoutMs: config.pgQueryTimeoutMs * 100,
    },
    log,
  );
  try {
    const applied = await migrate(pool);
    log.info({ applied }, applied.length ? 'migrations applied' : 'nothing to apply');
  } finally {
    await pool.end();
    await embedded?.stop();
  }
} catch (err) {
  console.error(
    err instanceof ConfigError ? err.message : `migrate failed: ${(err as Error).message}`,
  );
  process.exit(1);
}
