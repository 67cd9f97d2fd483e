// The table of environment variables; src/config.ts loads it into one frozen Config. A tuned
// default says here how its value was chosen.
import { commaList, integer, oneOf, text, variable } from './value-parsers.js';

export type IngestAck = 'durable' | 'queued';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export const MiB = 1024 * 1024;

/** Every variable the service reads, with what it accepts and its default: the docs and the compose
 *  file are checked against this list. */
export const configVariables = {
  host: variable('HOST', 'an interface address', text, '0.0.0.0'),
  port: integer('PORT', 0, 65535, 8080),
  embeddedPostgresPort: integer('EMBEDDED_PG_PORT', 0, 65535, 0, '0 = a free port'),
  embeddedPostgresDataDir: variable(
    'EMBEDDED_PG_DATA_DIR',
    'a directory path',
    text,
    './.data/postgres',
  ),
  // Postgres's own default (128 MB) is sized for tiny machines: at 10M events the idempotency
  // index alone is ~450 MB, and every insert lands on a random page of it.
  embeddedPostgresSharedBuffersMb: integer('EMBEDDED_PG_SHARED_BUFFERS_MB', 16, 65_536, 512),
  queueMaxSize: integer('QUEUE_MAX_SIZE', 1, 10_000_000, 10_000),
  // Request text from acceptance to commit (queued and in flight): one valid event can be ~1 MiB,
  // so an event count alone would let gigabytes wait.
  queueMaxBytes: integer('QUEUE_MAX_BYTES', 64, 16 * 1024 * MiB, 64 * MiB),
  batchMaxSize: integer('BATCH_MAX_SIZE', 1, 10_000, 500),
  // A writer thread holds about five copies of each batch it writes (text, parsed events, the
  // statement's parameters), several batches at once, and dead copies wait for a major GC: RSS
  // grows with this. 2 MiB kept a 10× overload of 512 KiB events under 300 MB + QUEUE_MAX_BYTES of
  // RSS (4 MiB did not) at the same stored rate, and still carries BATCH_MAX_SIZE events of 4 KiB.
  batchMaxBytes: integer('BATCH_MAX_BYTES', 64, 256 * MiB, 2 * MiB),
  batchMaxWaitMs: integer('BATCH_MAX_WAIT_MS', 1, 60_000, 50),
  bulkMaxEvents: integer('BULK_MAX_EVENTS', 1, 10_000, 100),
  maxBodyBytes: integer('MAX_BODY_BYTES', 64, 100 * MiB, MiB),
  // Each header pulse reads, and the query string; the biggest real ones (a JWT bearer, a long
  // If-None-Match list) fit in 8 KB with room to spare.
  maxHeaderBytes: integer('MAX_HEADER_BYTES', 256, 65_536, 8192),
  bodyTimeoutMs: integer('BODY_TIMEOUT_MS', 100, 600_000, 10_000),
  // A value that holds no key must not mean "no auth": that would fail open on a typo.
  apiKeys: variable(
    'API_KEYS',
    'comma-separated keys, at least one',
    (raw) => {
      const keys = commaList(raw);
      return keys.length > 0 ? keys : undefined;
    },
    [] as string[],
  ),
  corsOrigins: variable(
    'CORS_ORIGINS',
    'comma-separated origins (scheme://host[:port]), no *',
    (raw) => {
      const origins = commaList(raw);
      // An origin is compared byte for byte with the browser's Origin header, so refuse anything
      // that could never match it (a path, a trailing slash, a wildcard).
      const valid = origins.length > 0 && origins.every((o) => /^https?:\/\/[^/*\s]+$/.test(o));
      return valid ? origins : undefined;
    },
    [] as string[],
  ),
  clockSkewSeconds: integer('CLOCK_SKEW_SECONDS', 0, 31_536_000, 300),
  metadataMaxDepth: integer('METADATA_MAX_DEPTH', 1, 1000, 32),
  rateLimitMetricsPerMin: integer('RATE_LIMIT_METRICS_PER_MIN', 0, 1_000_000, 20, '0 = off'),
  // An export holds a read connection for as long as its client reads: far fewer than /metrics.
  rateLimitExportsPerMin: integer('RATE_LIMIT_EXPORTS_PER_MIN', 0, 1_000_000, 10, '0 = off'),
  rateLimitMaxClients: integer('RATE_LIMIT_MAX_CLIENTS', 1, 10_000_000, 100_000),
  // One a second on average: ample for a client with a mistyped key, while a guesser gets a try a
  // second instead of line rate. Above 10000 the limit would hardly slow a guesser down.
  authFailuresPerMin: integer('AUTH_FAILURES_PER_MIN', 0, 10_000, 60, '0 = off'),
  // How often each process checks access_version, in case a change notification was lost: a
  // revoked key or a new quota is in force everywhere within this plus a reload.
  accessRefreshMs: integer('ACCESS_REFRESH_MS', 100, 60_000, 1000),
  rollupRefreshMs: integer('ROLLUP_REFRESH_MS', 100, 3_600_000, 2000),
  rollupRefreshTimeoutMs: integer('ROLLUP_REFRESH_TIMEOUT_MS', 1000, 86_400_000, 600_000),
  metricsCacheTtlMs: integer('METRICS_CACHE_TTL_MS', 0, 3_600_000, 1000, '0 = no cache'),
  metricsCacheMaxKeys: integer('METRICS_CACHE_MAX_KEYS', 1, 1_000_000, 10_000),
  metricsMaxWindowDays: integer('METRICS_MAX_WINDOW_DAYS', 1, 36_600, 3660),
  metricsMaxBuckets: integer('METRICS_MAX_BUCKETS', 1, 100_000, 10_000),
  // A breakdown's series repeat the buckets per top value: 100k entries is ~5 MB of JSON.
  metricsMaxSeriesBuckets: integer('METRICS_MAX_SERIES_BUCKETS', 1, 10_000_000, 100_000),
  metricsBitmapCacheMb: integer('METRICS_BITMAP_CACHE_MB', 0, 65_536, 64, '0 = no cache'),
  metricsPoolSize: integer('METRICS_POOL_SIZE', 1, 100, 4),
  // About one slow statement's time (PG_STATEMENT_TIMEOUT_MS): a burst behind cold reads is
  // answered late, not refused. Each waiting request holds its query, at most MAX_HEADER_BYTES.
  metricsQueueWaitMs: integer('METRICS_QUEUE_WAIT_MS', 100, 600_000, 5000),
  metricsQueueMax: integer('METRICS_QUEUE_MAX', 0, 100_000, 1000, '0 = none wait'),
  exportPoolSize: integer('EXPORT_POOL_SIZE', 1, 100, 2),
  exportMaxPerClient: integer('EXPORT_MAX_PER_CLIENT', 1, 100, 2),
  exportBatchRows: integer('EXPORT_BATCH_ROWS', 1, 100_000, 1000),
  exportStallTimeoutMs: integer('EXPORT_STALL_TIMEOUT_MS', 100, 3_600_000, 30_000),
  // Long enough for a few GB at LAN speed; past it a client pages by time instead.
  exportMaxDurationMs: integer('EXPORT_MAX_DURATION_MS', 1000, 86_400_000, 600_000),
  // 64 KiB/s over 60 s: a reader may fall 3.75 MiB behind, more than a socket reports at once.
  exportMinBytesPerSec: integer('EXPORT_MIN_BYTES_PER_SEC', 0, 1024 * MiB, 64 * 1024, '0 = off'),
  exportThroughputWindowMs: integer('EXPORT_THROUGHPUT_WINDOW_MS', 1000, 3_600_000, 60_000),
  liveMaxClients: integer('LIVE_MAX_CLIENTS', 0, 1_000_000, 10_000, '0 = /live off'),
  // A slow reader is closed once this much waits for it: a second of a busy events stream at the
  // rate cap is far less, so only a client that stopped reading gets there.
  liveMaxBufferedBytes: integer('LIVE_MAX_BUFFERED_BYTES', 4096, 1024 * MiB, MiB),
  liveMaxMessageBytes: integer('LIVE_MAX_MESSAGE_BYTES', 256, 65_536, 4096),
  liveEventsPerSecond: integer('LIVE_EVENTS_PER_SECOND', 1, 10_000, 100),
  liveIdleTimeoutSeconds: integer('LIVE_IDLE_TIMEOUT_SECONDS', 8, 960, 120),
  // Half the most an event whose commit notification never came is late; each round scans the rows
  // committed in one interval (through the BRIN index), once per process with /live subscribers.
  liveCatchUpMs: integer('LIVE_CATCH_UP_MS', 1000, 3_600_000, 10_000),
  ingestWorkers: integer('INGEST_WORKERS', 1, 64, 2),
  clusterProcesses: integer('CLUSTER_PROCESSES', 1, 64, 1),
  ingestAck: variable<IngestAck>(
    'INGEST_ACK',
    'durable or queued',
    oneOf('durable', 'queued'),
    'durable',
  ),
  ingestTimeoutMs: integer('INGEST_TIMEOUT_MS', 100, 600_000, 8000),
  pgPoolSizePerWorker: integer('PG_POOL_SIZE_PER_WORKER', 1, 100, 1),
  pgConnectTimeoutMs: integer('PG_CONNECT_TIMEOUT_MS', 100, 600_000, 1500),
  pgStatementTimeoutMs: integer('PG_STATEMENT_TIMEOUT_MS', 100, 600_000, 5000),
  pgQueryTimeoutMs: integer('PG_QUERY_TIMEOUT_MS', 100, 600_000, 6500),
  retryAfterSeconds: integer('RETRY_AFTER_SECONDS', 1, 3600, 1),
  shutdownTimeoutMs: integer('SHUTDOWN_TIMEOUT_MS', 100, 600_000, 10_000),
  logLevel: variable<LogLevel>(
    'LOG_LEVEL',
    'fatal, error, warn, info, debug, trace or silent',
    oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
    'info',
  ),
} as const;
