// Environment → one typed, frozen config. Start-up fails with one message that lists every bad
// variable and what it accepts, never with the first one alone.

export type IngestAck = 'durable' | 'queued';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  host: string;
  port: number;
  /** null → start an embedded PostgreSQL 16. */
  postgresDsn: string | null;
  embeddedPostgresPort: number;
  embeddedPostgresDataDir: string;
  embeddedPostgresSharedBuffersMb: number;
  queueMaxSize: number;
  queueMaxBytes: number;
  batchMaxSize: number;
  batchMaxBytes: number;
  batchMaxWaitMs: number;
  bulkMaxEvents: number;
  maxBodyBytes: number;
  maxHeaderBytes: number;
  bodyTimeoutMs: number;
  apiKeys: readonly string[];
  /** Origins allowed to call the ingest routes from a browser; empty → no CORS headers at all. */
  corsOrigins: readonly string[];
  clockSkewSeconds: number;
  metadataMaxDepth: number;
  rateLimitMetricsPerMin: number;
  rateLimitExportsPerMin: number;
  rateLimitMaxClients: number;
  authFailuresPerMin: number;
  rollupRefreshMs: number;
  rollupRefreshTimeoutMs: number;
  metricsCacheTtlMs: number;
  metricsCacheMaxKeys: number;
  metricsMaxWindowDays: number;
  metricsBitmapCacheMb: number;
  metricsPoolSize: number;
  exportPoolSize: number;
  exportMaxPerClient: number;
  exportBatchRows: number;
  exportStallTimeoutMs: number;
  exportMaxDurationMs: number;
  exportMinBytesPerSec: number;
  exportThroughputWindowMs: number;
  ingestWorkers: number;
  clusterProcesses: number;
  ingestAck: IngestAck;
  ingestTimeoutMs: number;
  pgPoolSizePerWorker: number;
  pgConnectTimeoutMs: number;
  pgStatementTimeoutMs: number;
  pgQueryTimeoutMs: number;
  retryAfterSeconds: number;
  shutdownTimeoutMs: number;
  logLevel: LogLevel;
  /** Test-only faults (FAULT_INJECTION); always empty in production. */
  faults: ReadonlySet<Fault>;
}

/** Deliberate bugs the reliability suites switch on to prove they can fail (docs/RELIABILITY.md).
 *  Read from FAULT_INJECTION, a comma-separated list; refused without the test suites' switch
 *  (faultInjectionSwitch) and always when NODE_ENV=production. */
export const faultNames = ['ack-before-commit', 'unsorted-batches', 'worker-crash'] as const;
export type Fault = (typeof faultNames)[number];

type Env = Readonly<Record<string, string | undefined>>;

interface Variable<T> {
  readonly name: string;
  readonly accepts: string;
  readonly parse: (raw: string) => T | undefined;
  readonly fallback: T;
}

const int = (min: number, max: number) => (raw: string) => {
  if (!/^\d+$/.test(raw.trim())) return undefined;
  const n = Number(raw);
  return n >= min && n <= max ? n : undefined;
};
const oneOf =
  <T extends string>(...values: T[]) =>
  (raw: string) =>
    values.find((v) => v === raw.trim().toLowerCase());
const text = (raw: string) => (raw.trim() === '' ? undefined : raw.trim());

function variable<T>(
  name: string,
  accepts: string,
  parse: (raw: string) => T | undefined,
  fallback: T,
): Variable<T> {
  return { name, accepts, parse, fallback };
}

const MiB = 1024 * 1024;

/** Every variable the service reads, with what it accepts and its default: the docs and the compose
 *  file are checked against this list. */
export const configVariables = {
  host: variable('HOST', 'an interface address', text, '0.0.0.0'),
  port: variable('PORT', 'an integer 0–65535', int(0, 65535), 8080),
  embeddedPostgresPort: variable(
    'EMBEDDED_PG_PORT',
    'an integer 0–65535 (0 = a free port)',
    int(0, 65535),
    0,
  ),
  embeddedPostgresDataDir: variable(
    'EMBEDDED_PG_DATA_DIR',
    'a directory path',
    text,
    './.data/postgres',
  ),
  // Postgres's own default (128 MB) is sized for tiny machines: at 10M events the idempotency
  // index alone is ~450 MB, and every insert lands on a random page of it.
  embeddedPostgresSharedBuffersMb: variable(
    'EMBEDDED_PG_SHARED_BUFFERS_MB',
    'an integer 16–65536',
    int(16, 65_536),
    512,
  ),
  queueMaxSize: variable('QUEUE_MAX_SIZE', 'an integer 1–10000000', int(1, 10_000_000), 10_000),
  // Request text from acceptance to commit (queued and in flight): one valid event can be ~1 MiB,
  // so an event count alone would let gigabytes wait.
  queueMaxBytes: variable(
    'QUEUE_MAX_BYTES',
    'an integer 64–17179869184',
    int(64, 16 * 1024 * MiB),
    64 * MiB,
  ),
  batchMaxSize: variable('BATCH_MAX_SIZE', 'an integer 1–10000', int(1, 10_000), 500),
  // A writer thread holds about five copies of each batch it writes (text, parsed events, the
  // statement's parameters), several batches at once, and dead copies wait for a major GC: RSS
  // grows with this. 2 MiB kept a 10× overload of 512 KiB events under 300 MB + QUEUE_MAX_BYTES of
  // RSS (4 MiB did not) at the same stored rate, and still carries BATCH_MAX_SIZE events of 4 KiB.
  batchMaxBytes: variable(
    'BATCH_MAX_BYTES',
    'an integer 64–268435456',
    int(64, 256 * MiB),
    2 * MiB,
  ),
  batchMaxWaitMs: variable('BATCH_MAX_WAIT_MS', 'an integer 1–60000', int(1, 60_000), 50),
  bulkMaxEvents: variable('BULK_MAX_EVENTS', 'an integer 1–10000', int(1, 10_000), 100),
  maxBodyBytes: variable('MAX_BODY_BYTES', 'an integer 64–104857600', int(64, 100 * MiB), MiB),
  // Each header pulse reads, and the query string; the biggest real ones (a JWT bearer, a long
  // If-None-Match list) fit in 8 KB with room to spare.
  maxHeaderBytes: variable('MAX_HEADER_BYTES', 'an integer 256–65536', int(256, 65_536), 8192),
  bodyTimeoutMs: variable('BODY_TIMEOUT_MS', 'an integer 100–600000', int(100, 600_000), 10_000),
  // A value that holds no key must not mean "no auth": that would fail open on a typo.
  apiKeys: variable(
    'API_KEYS',
    'comma-separated keys, at least one',
    (raw) => {
      const keys = raw
        .split(',')
        .map((k) => k.trim())
        .filter((k) => k !== '');
      return keys.length > 0 ? keys : undefined;
    },
    [] as string[],
  ),
  corsOrigins: variable(
    'CORS_ORIGINS',
    'comma-separated origins (scheme://host[:port]), no *',
    (raw) => {
      const origins = raw
        .split(',')
        .map((o) => o.trim())
        .filter((o) => o !== '');
      // An origin is compared byte for byte with the browser's Origin header, so refuse anything
      // that could never match it (a path, a trailing slash, a wildcard).
      const valid = origins.length > 0 && origins.every((o) => /^https?:\/\/[^/*\s]+$/.test(o));
      return valid ? origins : undefined;
    },
    [] as string[],
  ),
  clockSkewSeconds: variable(
    'CLOCK_SKEW_SECONDS',
    'an integer 0–31536000',
    int(0, 31_536_000),
    300,
  ),
  metadataMaxDepth: variable('METADATA_MAX_DEPTH', 'an integer 1–1000', int(1, 1000), 32),
  rateLimitMetricsPerMin: variable(
    'RATE_LIMIT_METRICS_PER_MIN',
    'an integer 0–1000000 (0 = off)',
    int(0, 1_000_000),
    20,
  ),
  // An export holds a read connection for as long as its client reads: far fewer than /metrics.
  rateLimitExportsPerMin: variable(
    'RATE_LIMIT_EXPORTS_PER_MIN',
    'an integer 0–1000000 (0 = off)',
    int(0, 1_000_000),
    10,
  ),
  rateLimitMaxClients: variable(
    'RATE_LIMIT_MAX_CLIENTS',
    'an integer 1–10000000',
    int(1, 10_000_000),
    100_000,
  ),
  // One a second on average: ample for a client with a mistyped key, while a guesser gets a try a
  // second instead of line rate. Above 10000 the limit would hardly slow a guesser down.
  authFailuresPerMin: variable(
    'AUTH_FAILURES_PER_MIN',
    'an integer 0–10000 (0 = off)',
    int(0, 10_000),
    60,
  ),
  rollupRefreshMs: variable(
    'ROLLUP_REFRESH_MS',
    'an integer 100–3600000',
    int(100, 3_600_000),
    2000,
  ),
  rollupRefreshTimeoutMs: variable(
    'ROLLUP_REFRESH_TIMEOUT_MS',
    'an integer 1000–86400000',
    int(1000, 86_400_000),
    600_000,
  ),
  metricsCacheTtlMs: variable(
    'METRICS_CACHE_TTL_MS',
    'an integer 0–3600000 (0 = no cache)',
    int(0, 3_600_000),
    1000,
  ),
  metricsCacheMaxKeys: variable(
    'METRICS_CACHE_MAX_KEYS',
    'an integer 1–1000000',
    int(1, 1_000_000),
    10_000,
  ),
  metricsMaxWindowDays: variable(
    'METRICS_MAX_WINDOW_DAYS',
    'an integer 1–36600',
    int(1, 36_600),
    3660,
  ),
  metricsBitmapCacheMb: variable(
    'METRICS_BITMAP_CACHE_MB',
    'an integer 0–65536 (0 = no cache)',
    int(0, 65_536),
    64,
  ),
  metricsPoolSize: variable('METRICS_POOL_SIZE', 'an integer 1–100', int(1, 100), 4),
  exportPoolSize: variable('EXPORT_POOL_SIZE', 'an integer 1–100', int(1, 100), 2),
  exportMaxPerClient: variable('EXPORT_MAX_PER_CLIENT', 'an integer 1–100', int(1, 100), 2),
  exportBatchRows: variable('EXPORT_BATCH_ROWS', 'an integer 1–100000', int(1, 100_000), 1000),
  exportStallTimeoutMs: variable(
    'EXPORT_STALL_TIMEOUT_MS',
    'an integer 100–3600000',
    int(100, 3_600_000),
    30_000,
  ),
  // Long enough for a few GB at LAN speed; past it a client pages by time instead.
  exportMaxDurationMs: variable(
    'EXPORT_MAX_DURATION_MS',
    'an integer 1000–86400000',
    int(1000, 86_400_000),
    600_000,
  ),
  // 64 KiB/s over 60 s: a reader may fall 3.75 MiB behind, more than a socket reports at once.
  exportMinBytesPerSec: variable(
    'EXPORT_MIN_BYTES_PER_SEC',
    'an integer 0–1073741824 (0 = off)',
    int(0, 1024 * MiB),
    64 * 1024,
  ),
  exportThroughputWindowMs: variable(
    'EXPORT_THROUGHPUT_WINDOW_MS',
    'an integer 1000–3600000',
    int(1000, 3_600_000),
    60_000,
  ),
  ingestWorkers: variable('INGEST_WORKERS', 'an integer 1–64', int(1, 64), 2),
  clusterProcesses: variable('CLUSTER_PROCESSES', 'an integer 1–64', int(1, 64), 1),
  ingestAck: variable<IngestAck>(
    'INGEST_ACK',
    'durable or queued',
    oneOf('durable', 'queued'),
    'durable',
  ),
  ingestTimeoutMs: variable('INGEST_TIMEOUT_MS', 'an integer 100–600000', int(100, 600_000), 8000),
  pgPoolSizePerWorker: variable('PG_POOL_SIZE_PER_WORKER', 'an integer 1–100', int(1, 100), 1),
  pgConnectTimeoutMs: variable(
    'PG_CONNECT_TIMEOUT_MS',
    'an integer 100–600000',
    int(100, 600_000),
    1500,
  ),
  pgStatementTimeoutMs: variable(
    'PG_STATEMENT_TIMEOUT_MS',
    'an integer 100–600000',
    int(100, 600_000),
    5000,
  ),
  pgQueryTimeoutMs: variable(
    'PG_QUERY_TIMEOUT_MS',
    'an integer 100–600000',
    int(100, 600_000),
    6500,
  ),
  retryAfterSeconds: variable('RETRY_AFTER_SECONDS', 'an integer 1–3600', int(1, 3600), 1),
  shutdownTimeoutMs: variable(
    'SHUTDOWN_TIMEOUT_MS',
    'an integer 100–600000',
    int(100, 600_000),
    10_000,
  ),
  logLevel: variable<LogLevel>(
    'LOG_LEVEL',
    'fatal, error, warn, info, debug, trace or silent',
    oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
    'info',
  ),
} as const;

/** Names of every environment variable read, POSTGRES_DSN and DATABASE_URL included. */
export const configVariableNames: readonly string[] = [
  'POSTGRES_DSN',
  'DATABASE_URL',
  ...Object.values(configVariables).map((v) => v.name),
];

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig(env: Env = process.env): Readonly<Config> {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(configVariables) as [string, Variable<unknown>][]) {
    const raw = env[spec.name];
    if (raw === undefined || raw === '') {
      values[key] = spec.fallback;
      continue;
    }
    const parsed = spec.parse(raw);
    if (parsed === undefined)
      problems.push(`${spec.name}=${JSON.stringify(raw)}: expected ${spec.accepts}`);
    else values[key] = parsed;
  }
  const config = {
    ...values,
    postgresDsn: text(env.POSTGRES_DSN ?? '') ?? text(env.DATABASE_URL ?? '') ?? null,
    faults: parseFaults(env, problems),
  } as Config;

  if (problems.length === 0) {
    const atLeast = (name: string, value: number, otherName: string, other: number) => {
      if (value < other)
        problems.push(`${name}=${value}: must be at least ${otherName} (${other})`);
    };
    // One request's events commit in one transaction, so a batch must be able to hold a whole bulk.
    atLeast('BATCH_MAX_SIZE', config.batchMaxSize, 'BULK_MAX_EVENTS', config.bulkMaxEvents);
    atLeast('QUEUE_MAX_SIZE', config.queueMaxSize, 'BULK_MAX_EVENTS', config.bulkMaxEvents);
    // Nor may a batch or the queue be too small for the largest body a request may send.
    atLeast('BATCH_MAX_BYTES', config.batchMaxBytes, 'MAX_BODY_BYTES', config.maxBodyBytes);
    atLeast('QUEUE_MAX_BYTES', config.queueMaxBytes, 'BATCH_MAX_BYTES', config.batchMaxBytes);
    // The server-side timeout must fire first: a client whose query_timeout fired is wedged.
    if (config.pgStatementTimeoutMs >= config.pgQueryTimeoutMs)
      problems.push(
        `PG_STATEMENT_TIMEOUT_MS=${config.pgStatementTimeoutMs}: must be below PG_QUERY_TIMEOUT_MS (${config.pgQueryTimeoutMs})`,
      );
    // A socket reports room only once a third of its send buffer (up to 4 MiB on Linux) drained:
    // a reader above the floor can fall that far behind between two reports.
    const allowanceBytes = (config.exportMinBytesPerSec * config.exportThroughputWindowMs) / 1000;
    if (config.exportMinBytesPerSec > 0 && allowanceBytes < 2 * MiB)
      problems.push(
        `EXPORT_THROUGHPUT_WINDOW_MS=${config.exportThroughputWindowMs}: × EXPORT_MIN_BYTES_PER_SEC (${config.exportMinBytesPerSec}) must allow at least 2 MiB`,
      );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}

/** The test suites' switch that lets FAULT_INJECTION through. Nothing a user runs sets it (not
 *  `npm start`, the image, compose or the docs), so a stray FAULT_INJECTION stops start-up instead
 *  of silently acknowledging events before they are committed. */
export const faultInjectionSwitch = { name: 'PULSE_TEST_ONLY_ALLOW_FAULTS', value: '1' } as const;

function parseFaults(env: Env, problems: string[]): ReadonlySet<Fault> {
  const listed = (env.FAULT_INJECTION ?? '')
    .split(',')
    .map((f) => f.trim())
    .filter((f) => f !== '');
  if (listed.length === 0) return new Set();
  if (env[faultInjectionSwitch.name] !== faultInjectionSwitch.value) {
    problems.push(
      'FAULT_INJECTION is set: it breaks the service on purpose and only the test suites may use it; unset it',
    );
    return new Set();
  }
  if (env.NODE_ENV === 'production') {
    problems.push('FAULT_INJECTION is set: test-only faults are refused when NODE_ENV=production');
    return new Set();
  }
  const unknown = listed.filter((f) => !(faultNames as readonly string[]).includes(f));
  if (unknown.length > 0)
    problems.push(
      `FAULT_INJECTION=${JSON.stringify(env.FAULT_INJECTION)}: expected a comma-separated list of ${faultNames.join(', ')}`,
    );
  return new Set(listed.filter((f): f is Fault => (faultNames as readonly string[]).includes(f)));
}

/** Shorter keys still start (a deployment must not be locked out by an upgrade), with a warning. */
export const apiKeyMinLength = 16;

/** Settings that start the service but deserve a line in its start-up log. Never quotes a key. */
export function configWarnings(config: Pick<Config, 'apiKeys' | 'host'>): string[] {
  const warnings: string[] = [];
  const short = config.apiKeys.filter((key) => key.length < apiKeyMinLength).length;
  if (short > 0)
    warnings.push(
      `API_KEYS: ${short} of ${config.apiKeys.length} keys are shorter than ${apiKeyMinLength} characters; use long random keys`,
    );
  if (config.apiKeys.length === 0 && !isLoopback(config.host))
    warnings.push(
      `API_KEYS is not set and HOST=${config.host} is not a loopback address: the API is open to anyone who can reach it`,
    );
  return warnings;
}

function isLoopback(host: string): boolean {
  const address = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return (
    address === 'localhost' ||
    address === '::1' ||
    /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address)
  );
}

/** Postgres connections one server process opens: writer pools, the /metrics and export pools,
 *  and two admin connections (migrations, readiness probe, rollup refresh). */
export function connectionsPerProcess(config: Config): number {
  return (
    config.ingestWorkers * config.pgPoolSizePerWorker +
    config.metricsPoolSize +
    config.exportPoolSize +
    2
  );
}
