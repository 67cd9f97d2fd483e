// `npm start`: load config, start the service, shut down cleanly on SIGTERM/SIGINT.
import cluster from 'node:cluster';
import { runClusterPrimary } from './cluster-primary.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger, startService } from './service.js';

let config;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(2);
}
const log = createLogger(config);

if (config.clusterProcesses > 1 && cluster.isPrimary) {
  process.exit(await runClusterPrimary(config, log));
}

try {
  const service = await startService(config, log);
  const stop = (signal: string) => {
    log.info({ signal }, 'signal received');
    // Backstop: every step of shutdown has its own deadline, but nothing may keep us alive past it.
    setTimeout(() => {
      log.error('shutdown overran SHUTDOWN_TIMEOUT_MS; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs + 2000).unref();
    service
      .shutdown()
      .then(({ clean }) => process.exit(clean ? 0 : 1))
      .catch((err: unknown) => {
        log.fatal({ err: (err as Error).message }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
} catch (err) {
  log.fatal({ err: (err as Error).message }, 'start-up failed');
  process.exit(1);
}
