// GET /metrics while every reader connection is busy: further reads wait their turn, past
// PG_CONNECT_TIMEOUT_MS, and are answered once a connection comes free; past METRICS_QUEUE_WAIT_MS,
// or beyond METRICS_QUEUE_MAX waiting, they get 503 metrics_busy, never database_unavailable (the
// answer pg-pool's own queue gave them once the connect timeout passed); at shutdown those still
// waiting are refused rather than handed an ended pool. The reads are held up for real: a test
// transaction locks the events table, or a statement sleeps, so each read holds its connection.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { PoolBusyError, QueuedPool } from '../../src/sql/queued-pool.js';
import { createTestDatabase, servicePool, type TestDatabase } from '../helpers/database.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait-until.js';

let db: TestDatabase;
let server: TestServer | undefined;
let locker: pg.Client | undefined;
/** For states reached within milliseconds. */
const patience = { timeoutMs: 15_000 };

beforeAll(async () => {
  db = await createTestDatabase();
});
afterEach(async () => {
  await locker?.end();
  locker = undefined;
  await server?.stop();
  server = undefined;
});
afterAll(async () => {
  await db?.close();
});

/** A server with one reader connection, a connect timeout far shorter than the waits below, and
 *  statements that outlast them; its connection is held by a read that blocks on a lock of the
 *  events table until release(), so it waits for the test, not for a timeout. */
async function serverWithItsConnectionHeld(queue: { waitMs: number; max: number }) {
  server = await startTestServer(db.dsn, {
    METRICS_POOL_SIZE: '1',
    METRICS_QUEUE_WAIT_MS: String(queue.waitMs),
    METRICS_QUEUE_MAX: String(queue.max),
    PG_CONNECT_TIMEOUT_MS: '200',
    PG_STATEMENT_TIMEOUT_MS: '60000',
    PG_QUERY_TIMEOUT_MS: '65000',
    METRICS_CACHE_TTL_MS: '0',
    RATE_LIMIT_METRICS_PER_MIN: '0',
  });
  const lock = (locker = new pg.Client({ connectionString: db.dsn }));
  await lock.connect();
  await lock.query('BEGIN');
  await lock.query('LOCK TABLE events IN ACCESS EXCLUSIVE MODE');
  const holding = metrics(server.url, 1);
  await waitUntil(
    'the first read to block on the lock',
    async () => {
      const [row] = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND application_name LIKE 'pulse-reader-%'
           AND wait_event_type = 'Lock'`,
      );
      return row!.n === 1;
    },
    patience,
  );
  return { url: server.url, holding, release: () => lock.query('COMMIT') };
}

async function waitingGauge(url: string): Promise<number | undefined> {
  const name = 'pulse_metrics_waiting_requests';
  const text = await (await fetch(`${url}/internal/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

/** A distinct window per n: single flight would otherwise make concurrent reads one. */
function metrics(url: string, n: number): Promise<Response> {
  const from = Math.floor(Date.now() / 1000) - 86_400 + n;
  return fetch(`${url}/metrics?from=${from}`);
}

async function problemOf(res: Response) {
  const body = (await res.json()) as { code: string; detail: string };
  return { status: res.status, retryAfter: res.headers.get('retry-after'), ...body };
}

it('lets reads wait for a busy connection past the connect timeout, in turn, and refuses one more than METRICS_QUEUE_MAX at once', async () => {
  const { url, holding, release } = await serverWithItsConnectionHeld({ waitMs: 60_000, max: 2 });
  const waiting = [metrics(url, 2), metrics(url, 3)];
  await waitUntil(
    'two reads to wait for the connection',
    async () => (await waitingGauge(url)) === 2,
    patience,
  );

  const refusedAt = performance.now();
  const refused = await problemOf(await metrics(url, 4));
  expect(refused).toMatchObject({ status: 503, retryAfter: '1', code: 'metrics_busy' });
  expect(refused.detail).toContain('METRICS_QUEUE_MAX');
  // At once, not after a wait: nothing of it ran.
  expect(performance.now() - refusedAt).toBeLessThan(5_000);

  // Five connect timeouts later the two still wait: pg-pool's queue would have failed them.
  const settled: number[] = [];
  for (const [i, p] of [holding, ...waiting].entries()) void p.then(() => settled.push(i));
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  expect(settled).toEqual([]);
  expect(await waitingGauge(url)).toBe(2);

  await release();
  const answers = await Promise.all([holding, ...waiting]);
  expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
  expect(settled).toEqual([0, 1, 2]);
  expect(await waitingGauge(url)).toBe(0);
});

it('answers 503 metrics_busy once a read has waited METRICS_QUEUE_WAIT_MS, and serves the next read once the connection is free', async () => {
  const { url, holding, release } = await serverWithItsConnectionHeld({ waitMs: 400, max: 10 });

  const startedAt = performance.now();
  const timedOut = await problemOf(await metrics(url, 2));
  expect(timedOut).toMatchObject({ status: 503, retryAfter: '1', code: 'metrics_busy' });
  expect(timedOut.detail).toContain('METRICS_QUEUE_WAIT_MS');
  // It waited its turn's time, not the connect timeout's (200 ms).
  expect(performance.now() - startedAt).toBeGreaterThanOrEqual(390);
  expect(await waitingGauge(url)).toBe(0);

  await release();
  expect((await holding).status).toBe(200);
  // The timed-out read left no turn behind: the one connection serves reads again.
  expect((await Promise.all([metrics(url, 3), metrics(url, 4)])).map((r) => r.status)).toEqual([
    200, 200,
  ]);
});

it('refuses the reads still waiting when the pool ends at shutdown, and lets the running one finish', async () => {
  const queue = new QueuedPool(servicePool(db.dsn, 'pulse-queue-end', 1), {
    waitMs: 60_000,
    maxWaiting: 10,
  });
  const running = queue.query<{ slept: string }>({ text: 'SELECT pg_sleep(0.3)::text AS slept' });
  const waiting = queue.query({ text: 'SELECT 1' });
  await waitUntil('a read to wait', () => queue.waitingCount === 1, patience);
  const ended = queue.end();
  // Refused, not handed a connection of an ended pool: the route answers it 503 shutting_down.
  await expect(waiting).rejects.toBeInstanceOf(PoolBusyError);
  await expect(waiting).rejects.toMatchObject({ reason: 'closed' });
  await expect(queue.query({ text: 'SELECT 1' })).rejects.toMatchObject({ reason: 'closed' });
  expect((await running).rows).toEqual([{ slept: '' }]);
  await ended;
  expect(queue.waitingCount).toBe(0);
});
