// loadConfig: env → one frozen config, or one ConfigError listing every bad variable.
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  configVariables,
  configWarnings,
  faultInjectionSwitch,
  loadConfig,
} from '../../src/config.js';

type Env = Record<string, string | undefined>;

const testSwitch = { [faultInjectionSwitch.name]: faultInjectionSwitch.value };

/** The problems a refused environment produces (fails the test if it was accepted). */
function problemsOf(env: Env): readonly string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`);
}

describe('loadConfig', () => {
  it('returns the contract defaults for an empty environment', () => {
    // toMatchObject: other variables (metrics, export) have their own tests and keep arriving.
    expect(loadConfig({})).toMatchObject({
      host: '0.0.0.0',
      port: 8080,
      postgresDsn: null,
      embeddedPostgresPort: 0,
      embeddedPostgresDataDir: './.data/postgres',
      embeddedPostgresSharedBuffersMb: 512,
      queueMaxSize: 10_000,
      queueMaxBytes: 64 * 1024 * 1024,
      batchMaxSize: 500,
      batchMaxBytes: 2 * 1024 * 1024,
      batchMaxWaitMs: 50,
      bulkMaxEvents: 100,
      maxBodyBytes: 1024 * 1024,
      bodyTimeoutMs: 10_000,
      apiKeys: [],
      clockSkewSeconds: 300,
      metadataMaxDepth: 32,
      rateLimitMetricsPerMin: 20,
      ingestWorkers: 2,
      ingestAck: 'durable',
      ingestTimeoutMs: 8000,
      pgPoolSizePerWorker: 1,
      pgConnectTimeoutMs: 1500,
      pgStatementTimeoutMs: 5000,
      pgQueryTimeoutMs: 6500,
      retryAfterSeconds: 1,
      shutdownTimeoutMs: 10_000,
      logLevel: 'info',
    });
  });

  it('gives every declared variable its declared default, and nothing else', () => {
    const expected: Record<string, unknown> = { postgresDsn: null, faults: new Set() };
    for (const [key, spec] of Object.entries(configVariables)) expected[key] = spec.fallback;
    expect(loadConfig({})).toEqual(expected);
  });

  it('returns a frozen config', () => {
    expect(Object.isFrozen(loadConfig({}))).toBe(true);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ PORT: '', INGEST_ACK: '' })).toMatchObject({
      port: 8080,
      ingestAck: 'durable',
    });
  });

  it('reads PORT and the queue, batch, body, clock-skew and rate-limit variables', () => {
    expect(
      loadConfig({
        PORT: '9090',
        QUEUE_MAX_SIZE: '2000',
        BATCH_MAX_SIZE: '250',
        BATCH_MAX_WAIT_MS: '20',
        MAX_BODY_BYTES: '4096',
        CLOCK_SKEW_SECONDS: '0',
        RATE_LIMIT_METRICS_PER_MIN: '0',
      }),
    ).toMatchObject({
      port: 9090,
      queueMaxSize: 2000,
      batchMaxSize: 250,
      batchMaxWaitMs: 20,
      maxBodyBytes: 4096,
      clockSkewSeconds: 0,
      rateLimitMetricsPerMin: 0,
    });
  });

  it('splits API_KEYS on commas, trimming blanks', () => {
    expect(loadConfig({ API_KEYS: ' k1 ,,k2, ' }).apiKeys).toEqual(['k1', 'k2']);
  });

  it.each([',', ' , ,', ',,,'])(
    'refuses API_KEYS=%j, which holds no key, instead of running open',
    (raw) => {
      expect(problemsOf({ API_KEYS: raw })).toEqual([
        `API_KEYS=${JSON.stringify(raw)}: expected comma-separated keys, at least one`,
      ]);
    },
  );

  it('reads INGEST_ACK and LOG_LEVEL case-insensitively', () => {
    expect(loadConfig({ INGEST_ACK: 'Queued', LOG_LEVEL: ' WARN ' })).toMatchObject({
      ingestAck: 'queued',
      logLevel: 'warn',
    });
  });

  it.each([
    ['HOST', '   ', 'an interface address'],
    ['PORT', 'http', 'an integer 0–65535'],
    ['PORT', '65536', 'an integer 0–65535'],
    ['PORT', '-1', 'an integer 0–65535'],
    ['PORT', '80.5', 'an integer 0–65535'],
    ['EMBEDDED_PG_PORT', '1e3', 'an integer 0–65535 (0 = a free port)'],
    ['EMBEDDED_PG_DATA_DIR', ' ', 'a directory path'],
    ['QUEUE_MAX_SIZE', '0', 'an integer 1–10000000'],
    ['BATCH_MAX_SIZE', '10001', 'an integer 1–10000'],
    ['BATCH_MAX_WAIT_MS', 'soon', 'an integer 1–60000'],
    ['BULK_MAX_EVENTS', '0', 'an integer 1–10000'],
    ['MAX_BODY_BYTES', '63', 'an integer 64–104857600'],
    ['MAX_BODY_BYTES', '1MB', 'an integer 64–104857600'],
    ['BODY_TIMEOUT_MS', '99', 'an integer 100–600000'],
    ['CLOCK_SKEW_SECONDS', '-300', 'an integer 0–31536000'],
    ['METADATA_MAX_DEPTH', '1001', 'an integer 1–1000'],
    ['RATE_LIMIT_METRICS_PER_MIN', 'many', 'an integer 0–1000000 (0 = off)'],
    ['RATE_LIMIT_EXPORTS_PER_MIN', '-1', 'an integer 0–1000000 (0 = off)'],
    ['AUTH_FAILURES_PER_MIN', '10001', 'an integer 0–10000 (0 = off)'],
    ['INGEST_WORKERS', '65', 'an integer 1–64'],
    ['INGEST_ACK', 'async', 'durable or queued'],
    ['INGEST_TIMEOUT_MS', '0', 'an integer 100–600000'],
    ['PG_POOL_SIZE_PER_WORKER', '0', 'an integer 1–100'],
    ['PG_CONNECT_TIMEOUT_MS', 'x', 'an integer 100–600000'],
    ['PG_STATEMENT_TIMEOUT_MS', '600001', 'an integer 100–600000'],
    ['PG_QUERY_TIMEOUT_MS', '50', 'an integer 100–600000'],
    ['RETRY_AFTER_SECONDS', '0', 'an integer 1–3600'],
    ['SHUTDOWN_TIMEOUT_MS', 'forever', 'an integer 100–600000'],
    ['LOG_LEVEL', 'verbose', 'fatal, error, warn, info, debug, trace or silent'],
  ])('refuses %s=%j with one message naming it', (name, raw, accepts) => {
    expect(problemsOf({ [name]: raw })).toEqual([
      `${name}=${JSON.stringify(raw)}: expected ${accepts}`,
    ]);
  });

  it.each(Object.values(configVariables).map((v) => [v.name, v.accepts]))(
    'refuses a blank %s with one message saying what it accepts',
    (name, accepts) => {
      expect(problemsOf({ [name]: '   ' })).toEqual([`${name}="   ": expected ${accepts}`]);
    },
  );

  it('lists several bad variables together in one error', () => {
    expect(problemsOf({ PORT: 'x', INGEST_ACK: 'maybe', MAX_BODY_BYTES: '1' })).toEqual([
      'PORT="x": expected an integer 0–65535',
      'MAX_BODY_BYTES="1": expected an integer 64–104857600',
      'INGEST_ACK="maybe": expected durable or queued',
    ]);
  });

  it('puts every problem in the error message, one per line', () => {
    expect(() => loadConfig({ PORT: 'x', LOG_LEVEL: 'loud' })).toThrow(
      'invalid configuration:\n  PORT="x": expected an integer 0–65535\n  LOG_LEVEL="loud": expected fatal, error, warn, info, debug, trace or silent',
    );
  });

  it('refuses BATCH_MAX_SIZE below BULK_MAX_EVENTS', () => {
    expect(problemsOf({ BATCH_MAX_SIZE: '50', BULK_MAX_EVENTS: '100' })).toEqual([
      'BATCH_MAX_SIZE=50: must be at least BULK_MAX_EVENTS (100)',
    ]);
  });

  it('accepts BATCH_MAX_SIZE equal to BULK_MAX_EVENTS', () => {
    expect(loadConfig({ BATCH_MAX_SIZE: '100', BULK_MAX_EVENTS: '100' }).batchMaxSize).toBe(100);
  });

  it('refuses QUEUE_MAX_SIZE below BULK_MAX_EVENTS', () => {
    expect(problemsOf({ QUEUE_MAX_SIZE: '99' })).toEqual([
      'QUEUE_MAX_SIZE=99: must be at least BULK_MAX_EVENTS (100)',
    ]);
  });

  it('refuses BATCH_MAX_BYTES below MAX_BODY_BYTES', () => {
    expect(problemsOf({ BATCH_MAX_BYTES: '1000', MAX_BODY_BYTES: '1001' })).toEqual([
      'BATCH_MAX_BYTES=1000: must be at least MAX_BODY_BYTES (1001)',
    ]);
  });

  it('refuses QUEUE_MAX_BYTES below BATCH_MAX_BYTES', () => {
    expect(
      problemsOf({ QUEUE_MAX_BYTES: '1999', BATCH_MAX_BYTES: '2000', MAX_BODY_BYTES: '2000' }),
    ).toEqual(['QUEUE_MAX_BYTES=1999: must be at least BATCH_MAX_BYTES (2000)']);
  });

  it('accepts a queue, a batch and a body of the same byte size', () => {
    const config = loadConfig({
      QUEUE_MAX_BYTES: '2000',
      BATCH_MAX_BYTES: '2000',
      MAX_BODY_BYTES: '2000',
    });
    expect([config.queueMaxBytes, config.batchMaxBytes, config.maxBodyBytes]).toEqual([
      2000, 2000, 2000,
    ]);
  });

  it('refuses a statement timeout equal to the query timeout', () => {
    expect(problemsOf({ PG_STATEMENT_TIMEOUT_MS: '6500' })).toEqual([
      'PG_STATEMENT_TIMEOUT_MS=6500: must be below PG_QUERY_TIMEOUT_MS (6500)',
    ]);
  });

  it('refuses a statement timeout above the query timeout', () => {
    expect(problemsOf({ PG_STATEMENT_TIMEOUT_MS: '3000', PG_QUERY_TIMEOUT_MS: '2000' })).toEqual([
      'PG_STATEMENT_TIMEOUT_MS=3000: must be below PG_QUERY_TIMEOUT_MS (2000)',
    ]);
  });

  it('refuses a throughput floor whose window allows less than 2 MiB', () => {
    expect(
      problemsOf({ EXPORT_MIN_BYTES_PER_SEC: '16384', EXPORT_THROUGHPUT_WINDOW_MS: '60000' }),
    ).toEqual([
      'EXPORT_THROUGHPUT_WINDOW_MS=60000: × EXPORT_MIN_BYTES_PER_SEC (16384) must allow at least 2 MiB',
    ]);
    expect(
      loadConfig({ EXPORT_MIN_BYTES_PER_SEC: '0', EXPORT_THROUGHPUT_WINDOW_MS: '1000' }),
    ).toMatchObject({
      exportMinBytesPerSec: 0,
    });
  });

  it('lists every cross-variable problem together', () => {
    expect(
      problemsOf({ BATCH_MAX_SIZE: '10', QUEUE_MAX_SIZE: '10', PG_STATEMENT_TIMEOUT_MS: '9000' }),
    ).toHaveLength(3);
  });

  it('uses no embedded Postgres when POSTGRES_DSN is set', () => {
    expect(loadConfig({ POSTGRES_DSN: 'postgres://a@h/db' }).postgresDsn).toBe('postgres://a@h/db');
  });

  it('falls back to DATABASE_URL when POSTGRES_DSN is not set', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://b@h/db' }).postgresDsn).toBe('postgres://b@h/db');
  });

  it('prefers POSTGRES_DSN over DATABASE_URL', () => {
    expect(
      loadConfig({ POSTGRES_DSN: 'postgres://a@h/db', DATABASE_URL: 'postgres://b@h/db' })
        .postgresDsn,
    ).toBe('postgres://a@h/db');
  });

  it('falls back to DATABASE_URL when POSTGRES_DSN is blank', () => {
    expect(loadConfig({ POSTGRES_DSN: '  ', DATABASE_URL: 'postgres://b@h/db' }).postgresDsn).toBe(
      'postgres://b@h/db',
    );
  });

  it('starts an embedded Postgres (null DSN) when both are blank', () => {
    expect(loadConfig({ POSTGRES_DSN: '', DATABASE_URL: ' ' }).postgresDsn).toBeNull();
  });

  it.each([undefined, 'test', 'development'])(
    'refuses FAULT_INJECTION without the test-only switch (NODE_ENV=%s)',
    (nodeEnv) => {
      expect(problemsOf({ NODE_ENV: nodeEnv, FAULT_INJECTION: 'ack-before-commit' })).toEqual([
        'FAULT_INJECTION is set: it breaks the service on purpose and only the test suites may use it; unset it',
      ]);
    },
  );

  it('refuses FAULT_INJECTION with a switch value other than the exact one', () => {
    expect(
      problemsOf({ FAULT_INJECTION: 'worker-crash', [faultInjectionSwitch.name]: 'true' }),
    ).toHaveLength(1);
  });

  it('refuses FAULT_INJECTION when NODE_ENV=production, even with the test-only switch', () => {
    expect(
      problemsOf({ ...testSwitch, NODE_ENV: 'production', FAULT_INJECTION: 'ack-before-commit' }),
    ).toEqual(['FAULT_INJECTION is set: test-only faults are refused when NODE_ENV=production']);
  });

  it('reads FAULT_INJECTION with the test-only switch, and no fault is on without it', () => {
    expect(
      loadConfig({ ...testSwitch, FAULT_INJECTION: 'ack-before-commit, worker-crash' }).faults,
    ).toEqual(new Set(['ack-before-commit', 'worker-crash']));
    expect(loadConfig({ ...testSwitch }).faults).toEqual(new Set());
  });

  it('refuses an unknown fault', () => {
    expect(problemsOf({ ...testSwitch, FAULT_INJECTION: 'ack-before-commit,drop-tables' })).toEqual(
      [
        'FAULT_INJECTION="ack-before-commit,drop-tables": expected a comma-separated list of ack-before-commit, unsorted-batches, worker-crash',
      ],
    );
  });
});

describe('configWarnings', () => {
  const longKey = 'k'.repeat(16);

  it('has nothing to say about long keys', () => {
    expect(configWarnings({ host: '0.0.0.0', apiKeys: [longKey, `${longKey}-2`] })).toEqual([]);
  });

  it('names API_KEYS, but never the key, when a key is shorter than 16 characters', () => {
    const shortKey = 'short-key-15chr';
    const warnings = configWarnings({ host: '0.0.0.0', apiKeys: [longKey, shortKey] });
    expect(warnings).toEqual([
      'API_KEYS: 1 of 2 keys are shorter than 16 characters; use long random keys',
    ]);
    expect(warnings.join('\n')).not.toContain(shortKey);
  });

  it.each(['0.0.0.0', '::', '10.0.0.5', 'example.internal'])(
    'warns that the API is open without keys on HOST=%s',
    (host) => {
      expect(configWarnings({ host, apiKeys: [] })).toEqual([
        `API_KEYS is not set and HOST=${host} is not a loopback address: the API is open to anyone who can reach it`,
      ]);
    },
  );

  it.each(['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]', '::ffff:127.0.0.1'])(
    'stays quiet without keys on the loopback HOST=%s',
    (host) => {
      expect(configWarnings({ host, apiKeys: [] })).toEqual([]);
    },
  );

  it('warns about the defaults: no key, every interface', () => {
    expect(configWarnings(loadConfig({}))).toHaveLength(1);
  });
});
