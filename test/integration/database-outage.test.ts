// Postgres stopped and started again under load: the server answers 503 with Retry-After (never
// 500) while it is down, recovers by itself when it is back, and loses nothing it acknowledged
// (docs/RELIABILITY.md, scenario 2). This file runs its own Postgres, so it can stop it.
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startEmbeddedPostgres,
  type EmbeddedPostgresHandle,
} from '../../src/embedded/embedded-postgres.js';
import { cleanVerdict, judge, OutcomeLog, readStoredIds, startLoad } from '../helpers/load.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait-until.js';

let parentDir: string;
let postgres: EmbeddedPostgresHandle | undefined;
let server: TestServer | undefined;

const postgresLog = pino({ level: 'silent' });
const startPostgres = (port: number) =>
  startEmbeddedPostgres({
    dataDir: join(parentDir, 'pg'),
    port,
    persistent: true, // stop() must keep the data directory: we start it again
    log: postgresLog,
  });

beforeAll(async () => {
  parentDir = await mkdtemp(join(tmpdir(), 'pulse-outage-'));
  await chmod(parentDir, 0o755); // postgres runs as user postgres and must reach the data dir
  postgres = await startPostgres(0);
});
afterAll(async () => {
  await server?.stop();
  await postgres?.stop();
  await rm(parentDir, { recursive: true, force: true });
});

async function readiness(url: string): Promise<number> {
  return (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(10_000) })).status;
}

describe('database outage', () => {
  it('answers 503 while Postgres is down, recovers without a restart, and loses nothing acknowledged', async () => {
    const first = postgres!;
    const running = await startTestServer(first.dsn, { INGEST_TIMEOUT_MS: '3000' });
    server = running;
    const { url } = running;
    const log = new OutcomeLog();
    const load = startLoad({
      url: `${url}/events/bulk`,
      log,
      clients: 4,
      eventsPerRequest: 5,
      maxRequests: 20_000,
      maxDurationMs: 45_000,
      requestTimeoutMs: 15_000,
      pauseMs: 10,
    });
    const oksSince = (t: number) => log.count((r) => r.status === 202 && r.sentAt >= t);

    await waitUntil('load to be acknowledged', () => oksSince(0) >= 30, { timeoutMs: 20_000 });
    await first.stop();
    postgres = undefined;
    const stoppedAt = Date.now();
    await waitUntil(
      'readiness to fail and ingest to answer 503',
      async () =>
        (await readiness(url)) === 503 &&
        log.count((r) => r.status === 503 && r.sentAt >= stoppedAt) >= 10,
      { timeoutMs: 20_000, intervalMs: 100 },
    );

    postgres = await startPostgres(first.port);
    const restartedAt = Date.now();
    await waitUntil('readiness to recover', async () => (await readiness(url)) === 200, {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    await waitUntil('202s after the restart', () => oksSince(restartedAt) >= 20, {
      timeoutMs: 30_000,
    });
    load.stop();
    await load.done;

    // Every answer is 202 or a 503 the client can retry; no 500, no 4xx, no hang.
    const answers = new Set(
      log.records.map((r) =>
        r.status === 202
          ? '202'
          : [r.status, r.code, r.contentType, r.retryAfter !== null ? 'retry-after' : ''].join(' '),
      ),
    );
    const outageAnswers = [...answers].filter((a) => a !== '202');
    expect(outageAnswers.length).toBeGreaterThan(0);
    const retryable = [
      '503 database_unavailable application/problem+json retry-after',
      '503 ingest_timeout application/problem+json retry-after',
    ];
    expect(outageAnswers.filter((a) => !retryable.includes(a))).toEqual([]);

    const client = new pg.Client({ connectionString: postgres.dsn });
    await client.connect();
    try {
      const stored = await readStoredIds({
        query: async <R extends Record<string, unknown>>(sql: string) =>
          (await client.query<R>(sql)).rows,
      });
      // database_unavailable is answered before enqueueing (the batcher already knows the
      // database is down): those events are definitely not stored. ingest_timeout is in doubt.
      const refused = log.records.filter((r) => r.code === 'database_unavailable');
      expect(refused.length).toBeGreaterThan(0);
      expect(judge(log, stored, new Set(refused.flatMap((r) => r.ids)))).toEqual(cleanVerdict);
    } finally {
      await client.end();
    }
  });
});
