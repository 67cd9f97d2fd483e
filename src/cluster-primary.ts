// CLUSTER_PROCESSES > 1: this process starts Postgres if needed and forks N servers that all
// listen on PORT (uWS sets SO_REUSEPORT, so the kernel spreads connections across them). It
// serves nothing itself; it restarts a server that dies and drains them all on SIGTERM.
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { startConfiguredPostgres } from './embedded/embedded-postgres.js';

/** A server that dies sooner than this after starting is failing to start: stop, don't loop. */
const minimumUptimeMs = 5000;

export async function runClusterPrimary(config: Config, log: Logger): Promise<number> {
  const embedded = await startConfiguredPostgres(config, log);
  const env = { POSTGRES_DSN: embedded?.dsn ?? config.postgresDsn ?? '' };
  let stopping = false;
  let failed = false;
  const startedAt = new Map<Worker, number>();
  const fork = () => startedAt.set(cluster.fork(env), Date.now());

  const allExited = new Promise<void>((resolve) => {
    cluster.on('exit', (worker, code, signal) => {
      const uptimeMs = Date.now() - (startedAt.get(worker) ?? 0);
      startedAt.delete(worker);
      if (stopping) {
        if (code !== 0) failed = true;
        if (startedAt.size === 0) resolve();
        return;
      }
      log.error({ pid: worker.process.pid, code, signal, uptimeMs }, 'server process exited');
      if (uptimeMs < minimumUptimeMs) {
        failed = true;
        void stop();
      } else fork();
    });
  });

  const stop = async () => {
    if (stopping) return;
    stopping = true;
    for (const worker of startedAt.keys()) worker.process.kill('SIGTERM');
    const deadline = new Promise<void>((resolve) =>
      setTimeout(resolve, config.shutdownTimeoutMs + 1000).unref(),
    );
    await Promise.race([allExited, deadline]);
    for (const worker of startedAt.keys()) {
      failed = true;
      worker.process.kill('SIGKILL');
    }
  };

  for (let i = 0; i < config.clusterProcesses; i++) fork();
  log.info({ processes: config.clusterProcesses, port: config.port }, 'cluster started');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => void stop().then(resolve));
    process.once('SIGINT', () => void stop().then(resolve));
    void allExited.then(resolve);
  });
  await embedded?.stop();
  log.info({ clean: !failed }, 'cluster stopped');
  return failed ? 1 : 0;
}
