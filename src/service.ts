// Composition root: config → database → writer pool → batcher → HTTP. Shutdown runs in reverse.
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { pino, type Logger } from 'pino';
import { AccessStore } from './access/access-store.js';
import { configWarnings, connectionsPerProcess, type Config } from './config.js';
import { startConfiguredPostgres } from './embedded/embedded-postgres.js';
import { switchOnFaults } from './faults/fault-injection.js';
import { loadDashboardPage } from './http/dashboard-page.js';
import { createApp, listen } from './http/http-server.js';
import { loadNativeUws } from './http/load-uws.js';
import { Batcher } from './ingest/batcher.js';
import { CellBitmapCache } from './metrics/cell-bitmap-cache.js';
import { MetricsCache } from './metrics/metrics-cache.js';
import { RollupRefresher } from './metrics/rollup-refresher.js';
import { createWriterPool } from './ingest/writer-pool.js';
import { CommitAnnouncer } from './live/commit-announcer.js';
import { accessChannel } from './sql/access-rows.js';
import { commitChannel, parseCommitPayload } from './sql/commit-notifications.js';
import { openNotificationConnection } from './sql/notification-connection.js';
import { isDatabaseStarting } from './sql/classify-pg-error.js';
import { readConnectionBudget } from './sql/connection-budget.js';
import { createPool, type PoolOptions } from './sql/create-pool.js';
import { QueuedPool } from './sql/queued-pool.js';
import { DatabaseProbe } from './sql/database-probe.js';
import { durabilityWarnings, readDurabilitySettings } from './sql/durability-settings.js';
import { Telemetry } from './telemetry/telemetry.js';
import { listMigrations, migrate } from './sql/migrate.js';

export interface Service {
  readonly port: number;
  readonly dsn: string;
  readonly refresher: RollupRefresher;
  /** Stop accepting, finish requests, write every accepted event, close everything. */
  shutdown(): Promise<{ clean: boolean }>;
}

/** How often readiness re-checks the database (so how soon ingest resumes after an outage), and
 *  start-up while it waits for the database. */
const probeIntervalMs = 1000;
/** Start-up waits this long for a database that is still coming up (compose, restarts). */
const startupDatabaseWaitMs = 30_000;

export function createLogger(config: Pick<Config, 'logLevel'>): Logger {
  return pino({ level: config.logLevel, base: { service: 'pulse', pid: process.pid } });
}

export async function startService(
  config: Config,
  log: Logger = createLogger(config),
): Promise<Service> {
  const { uws, build: uwsBuild } = loadNativeUws(); // before anything else: refuse the slow fallback early
  // V8 starts allocating a site's objects straight into the old generation once nearly all of them
  // survived a minor GC, and never goes back. A burst while the code is still cold does that to a
  // site that allocates per request; each such object then dies in the old generation and, until
  // the next full GC, keeps alive all it points at through every minor GC. In half the runs of
  // single events that was a fifth of the uWS thread's allocation, promoted for the life of the
  // process (docs/benchmarks.md). The flag is process-wide: it holds for the writer threads too.
  setFlagsFromString('--no-allocation-site-pretenuring');
  for (const warning of configWarnings(config)) log.warn(warning);
  const dashboard = loadDashboardPage();
  if (!dashboard.ok)
    throw new Error(
      `the dashboard is not built (${dashboard.missing} is missing): run npm run build`,
    );
  switchOnFaults(config.faults);
  const embedded = await startConfiguredPostgres(config, log);
  const dsn = embedded?.dsn ?? config.postgresDsn ?? '';
  const poolOptions = (role: PoolRole, max: number) => servicePoolOptions(config, dsn, role, max);
  const adminPool = createPool(poolOptions('admin', 2), log);
  try {
    const applied = await retryUntil(() => migrate(adminPool), startupDatabaseWaitMs, log);
    log.info({ applied }, 'migrations applied');
    for (const warning of durabilityWarnings(await readDurabilitySettings(adminPool)))
      log.warn(warning);
    const budget = await readConnectionBudget(
      adminPool,
      config.clusterProcesses * connectionsPerProcess(config),
    );
    if (budget.needed > budget.available) {
      throw new Error(
        `this configuration opens ${budget.needed} Postgres connections (CLUSTER_PROCESSES × (INGEST_WORKERS × ` +
          `PG_POOL_SIZE_PER_WORKER + METRICS_POOL_SIZE + EXPORT_POOL_SIZE + 3)) but the server accepts ${budget.available}; ` +
          'lower those settings, raise max_connections, or put PgBouncer in front (docs/scaling.md)',
      );
    }
    if (budget.inUse + budget.needed > budget.available) {
      log.warn(
        budget,
        'other clients already hold connections: this deployment may hit "too many clients"',
      );
    }
  } catch (err) {
    await adminPool.end();
    await embedded?.stop();
    throw err;
  }
  const writers = createWriterPool(
    config.ingestWorkers,
    {
      pool: poolOptions('writer', config.pgPoolSizePerWorker),
      logLevel: config.logLevel,
      faults: [...config.faults],
    },
    log,
    config.batchMaxBytes,
  );
  const metricsCache = new MetricsCache({
    ttlMs: config.metricsCacheTtlMs,
    maxKeys: config.metricsCacheMaxKeys,
  });
  // Sources are read at scrape time, after everything they name is created below.
  const cellBitmaps = new CellBitmapCache(config.metricsBitmapCacheMb * 1024 * 1024);
  const telemetry: Telemetry = new Telemetry({
    queueDepth: () => batcher.depth,
    queueDepthBytes: () => batcher.depthBytes,
    writerUtilization: () => writers.utilization(),
    rollupLagSeconds: () => refresher.lagSeconds,
    metricsCacheKeys: () => metricsCache.size,
    metricsWaiting: () => readPool.waitingCount,
    writerThreads: () => writers.threadCount(),
    uwsBuild,
  });
  const batcher: Batcher = new Batcher(writers, config, log, telemetry, (committed) =>
    announcer.announce(committed),
  );
  const probe = new DatabaseProbe(adminPool, await listMigrations(), log, (state) =>
    batcher.setDatabaseAvailable(state.reachable && state.migrated),
  );
  await probe.probe();
  probe.start(probeIntervalMs);
  const access = await retryUntil(
    () => AccessStore.load(adminPool, log),
    startupDatabaseWaitMs,
    log,
  );
  access.start(config.accessRefreshMs);
  const readPool = new QueuedPool(createPool(poolOptions('reader', config.metricsPoolSize), log), {
    waitMs: config.metricsQueueWaitMs,
    maxWaiting: config.metricsQueueMax,
  });
  // Exports hold a connection for as long as their reader takes: apart, they cannot starve /metrics.
  const exportPool = createPool(poolOptions('export', config.exportPoolSize), log);
  const refresher: RollupRefresher = new RollupRefresher(
    adminPool,
    config.rollupRefreshMs,
    config.rollupRefreshTimeoutMs,
    log,
    telemetry,
  );
  refresher.start();
  const app = createApp(uws, {
    config,
    batcher,
    probe,
    readPool,
    exportPool,
    metricsCache,
    cellBitmaps,
    telemetry,
    access,
    adminPool,
    dashboard: dashboard.page,
    log,
  });
  const notifications = openNotificationConnection(
    poolOptions('notifications', 1),
    {
      [accessChannel]: () => void access.reload(),
      [commitChannel]: (payload) => {
        for (const commit of parseCommitPayload(payload) ?? []) app.live.committed(commit);
      },
    },
    // What changed while no one listened is caught up now, not at the next poll or commit: access
    // rules, the commits announced meanwhile, and the announcements this process could not send.
    () => {
      void access.reload();
      app.live.listening();
      announcer.announceUnsent();
    },
    log,
  );
  const announcer = new CommitAnnouncer(notifications, log);
  // Until it listens, /live subscribers would wait for the next commit announced after it.
  await notifications.firstAttempt;
  const server = await listen(uws, app, config.host, config.port);
  log.info(
    {
      port: server.port,
      ack: config.ingestAck,
      workers: config.ingestWorkers,
      embedded: Boolean(embedded),
      uws: `${uwsBuild.packageName}@${uwsBuild.version}`,
    },
    'listening',
  );

  let shuttingDown: Promise<{ clean: boolean }> | undefined;
  const shutdown = async (): Promise<{ clean: boolean }> => {
    const deadline = Date.now() + config.shutdownTimeoutMs;
    log.info('shutting down: closing the listen socket');
    server.beginDrain();
    const liveClosed = app.live.closeAll();
    const answerOpenRequests = async () => {
      while (server.openRequests > 0 && Date.now() < deadline) await sleep(10);
    };
    await answerOpenRequests();
    // Past the deadline, what is still open (an export to a slow reader, say) is cut: it holds a
    // pool connection, and the pools must close for the process to end in time.
    const cutRequests = server.closeOpenRequests();
    const drained = await batcher.drain(Math.max(0, deadline - Date.now()));
    if (!drained.drained)
      log.error(
        { events: drained.leftEvents },
        '[ingest] batch insert FAILED: shutdown deadline passed',
      );
    probe.stop();
    await refresher.stop();
    metricsCache.close();
    await writers.close();
    await readPool.end();
    await exportPool.end();
    await access.stop();
    await announcer.flush();
    await notifications.close();
    await adminPool.end();
    await embedded?.stop();
    // A kept-alive connection may still send one request while the pools close; its refusal goes
    // out a loop turn later and closes the connection. Answer those before judging the stop.
    await answerOpenRequests();
    const clean = drained.drained && cutRequests === 0 && server.openRequests === 0;
    log.info(
      {
        clean,
        cutRequests,
        liveClosed,
        unansweredRequests: server.openRequests,
        unwrittenEvents: drained.leftEvents,
      },
      'stopped',
    );
    return { clean };
  };
  return {
    port: server.port,
    dsn,
    refresher,
    shutdown: () => (shuttingDown ??= shutdown()),
  };
}

export type PoolRole = 'admin' | 'writer' | 'reader' | 'export' | 'notifications';

/** The options of each of the service's pools. 'pulse-<role>-<pid>': the 'pulse-' prefix is how
 *  the connection budget tells our connections from others', and the pid tells which process
 *  holds them (a killed one must leave none). */
export function servicePoolOptions(
  config: Config,
  dsn: string,
  role: PoolRole,
  max: number,
): PoolOptions {
  return {
    connectionString: dsn,
    applicationName: `pulse-${role}-${process.pid}`,
    max,
    connectTimeoutMs: config.pgConnectTimeoutMs,
    statementTimeoutMs: config.pgStatementTimeoutMs,
    queryTimeoutMs: config.pgQueryTimeoutMs,
    // A durable 202 is sent after the writer's COMMIT: it must not depend on the server's settings.
    synchronousCommit: role === 'writer',
  };
}

async function retryUntil<T>(run: () => Promise<T>, withinMs: number, log: Logger): Promise<T> {
  const giveUpAt = Date.now() + withinMs;
  for (;;) {
    try {
      return await run();
    } catch (err) {
      if (Date.now() >= giveUpAt || !isDatabaseStarting(err)) throw err;
      log.warn({ err: (err as Error).message }, 'database not ready yet; retrying');
      await sleep(probeIntervalMs);
    }
  }
}
