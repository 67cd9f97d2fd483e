// Environment → one typed, frozen config. Start-up fails with one message that lists every bad
// variable and what it accepts, never with the first one alone.
import { configVariables, type IngestAck, type LogLevel } from './config/config-variables.js';
import { crossCheckProblems } from './config/cross-checks.js';
import { text, type Variable } from './config/value-parsers.js';

export { configVariables, type IngestAck, type LogLevel } from './config/config-variables.js';

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
  accessRefreshMs: number;
  rollupRefreshMs: number;
  rollupRefreshTimeoutMs: number;
  metricsCacheTtlMs: number;
  metricsCacheMaxKeys: number;
  metricsMaxWindowDays: number;
  metricsMaxBuckets: number;
  metricsMaxSeriesBuckets: number;
  metricsBitmapCacheMb: number;
  metricsPoolSize: number;
  metricsQueueWaitMs: number;
  metricsQueueMax: number;
  exportPoolSize: number;
  exportMaxPerClient: number;
  exportBatchRows: number;
  exportStallTimeoutMs: number;
  exportMaxDurationMs: number;
  exportMinBytesPerSec: number;
  exportThroughputWindowMs: number;
  /** /live connections per process; 0 turns /live off. */
  liveMaxClients: number;
  liveMaxBufferedBytes: number;
  liveMaxMessageBytes: number;
  liveEventsPerSecond: number;
  liveIdleTimeoutSeconds: number;
  liveCatchUpMs: number;
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

  if (problems.length === 0) problems.push(...crossCheckProblems(config));
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
 *  two admin connections (migrations, readiness probe, rollup refresh, access reloads, the admin
 *  API) and the one that listens for access changes and commits and announces commits. */
export function connectionsPerProcess(config: Config): number {
  return (
    config.ingestWorkers * config.pgPoolSizePerWorker +
    config.metricsPoolSize +
    config.exportPoolSize +
    3
  );
}
