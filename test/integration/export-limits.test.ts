// GET /events/export against slow and greedy readers: exports have their own connections, so
// stalled exporters never make /metrics answer 503; a client may run EXPORT_MAX_PER_CLIENT at once;
// a reader below EXPORT_MIN_BYTES_PER_SEC and an export past EXPORT_MAX_DURATION_MS are cut and
// their connection returned; and Postgres frees the connection of a process that stops serving it.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { openExportReader, type ExportReader } from '../helpers/export-reader.js';
import { spawnServer, startTestServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait-until.js';

const secondsPerDay = 86_400;
/** ~1 KB rows, ~40 MB in all: far more than the socket buffers between server and reader. */
const rowCount = 40_000;
const bigFrom = 19_300 * secondsPerDay;
const bigTo = bigFrom + rowCount - 1;
const bigExport = `from=${bigFrom}&to=${bigTo}`;
/** A window holding 3 rows, to check that an export works after a cut. */
const smallExport = `from=${bigFrom}&to=${bigFrom + 2}`;
/** Generous: the cuts tested here come after a few seconds. */
const cutWithinMs = 60_000;

const quiet = {
  INGEST_WORKERS: '1',
  RATE_LIMIT_METRICS_PER_MIN: '0',
  METRICS_CACHE_TTL_MS: '0',
  EXPORT_BATCH_ROWS: '200',
  // Far beyond every wait here: a cut in these tests is never the stall timer's.
  EXPORT_STALL_TIMEOUT_MS: '600000',
};

let db: TestDatabase;
/** Two /metrics and two export connections; no per-client limit in the way. */
let shared: TestServer;
let perClient: TestServer;
/** A floor of 1 MB/s over a 5 s window, one export connection. */
let paced: TestServer;
/** Exports cut after 3 s, no floor, one export connection. */
let brief: TestServer;
const readers: ExportReader[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  [shared, perClient, paced, brief] = await Promise.all([
    startTestServer(db.dsn, {
      ...quiet,
      METRICS_POOL_SIZE: '2',
      EXPORT_POOL_SIZE: '2',
      EXPORT_MAX_PER_CLIENT: '10',
    }),
    startTestServer(db.dsn, { ...quiet, EXPORT_POOL_SIZE: '4', EXPORT_MAX_PER_CLIENT: '2' }),
    startTestServer(db.dsn, {
      ...quiet,
      EXPORT_POOL_SIZE: '1',
      EXPORT_MIN_BYTES_PER_SEC: '1000000',
      EXPORT_THROUGHPUT_WINDOW_MS: '5000',
    }),
    startTestServer(db.dsn, {
      ...quiet,
      EXPORT_POOL_SIZE: '1',
      EXPORT_MIN_BYTES_PER_SEC: '0',
      EXPORT_MAX_DURATION_MS: '3000',
    }),
  ]);
  await db.query(
    `INSERT INTO events (idem_key, event_id, event_name, user_id, occurred_at, metadata)
     SELECT md5('limits' || n)::uuid, 'limits-' || n, 'limits', 'u' || (n % 100),
            to_timestamp($1::int8 + n), jsonb_build_object('fill', repeat('y', 1000))
     FROM generate_series(0, $2::int - 1) AS n`,
    [bigFrom, rowCount],
  );
});
afterEach(async () => {
  for (const reader of readers.splice(0)) reader.destroy();
  // The next test starts with every export slot free.
  await waitUntil('every export to end', async () => (await busyExportConnections()) === 0, {
    timeoutMs: 15_000,
  });
});
afterAll(async () => {
  await Promise.all([shared?.stop(), perClient?.stop(), paced?.stop(), brief?.stop()]);
  await db?.close();
});

const portOf = (server: TestServer) => Number(new URL(server.url).port);

async function open(server: TestServer, query: string, localAddress?: string) {
  const reader = await openExportReader(portOf(server), query, localAddress);
  readers.push(reader);
  return reader;
}

/** Connections of the export pools in a transaction (an export running, or one never returned). */
async function busyExportConnections(): Promise<number> {
  const [row] = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
     WHERE datname = current_database() AND application_name LIKE 'pulse-export-%'
       AND state <> 'idle'`,
  );
  return row!.n;
}

/** Waits until an export runs and then until it has given its connection back (or cutWithinMs). */
async function untilExportEnds(): Promise<void> {
  const giveUpAt = Date.now() + cutWithinMs;
  let seenRunning = false;
  while (Date.now() < giveUpAt) {
    const busy = await busyExportConnections();
    if (busy > 0) seenRunning = true;
    else if (seenRunning) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Exports the big window, taking bytesPerSecond every 100 ms until the server ends or cuts the
 *  export, then takes whatever is left. */
async function readWholeExport(server: TestServer, bytesPerSecond: number) {
  const reader = await open(server, bigExport);
  expect(reader.status).toBe(200);
  let lastTakeMs = Date.now();
  const pacing = setInterval(() => {
    const now = Date.now();
    reader.allow(Math.floor(((now - lastTakeMs) * bytesPerSecond) / 1000));
    lastTakeMs = now;
  }, 100);
  try {
    await untilExportEnds();
  } finally {
    clearInterval(pacing);
  }
  return reader.drain();
}

/** A later export on the same server streams completely: the cut one returned its connection. */
async function expectExportsWork(server: TestServer): Promise<void> {
  const text = await waitUntil(
    'an export to be served again',
    async () => {
      const res = await fetch(`${server.url}/events/export?${smallExport}`);
      return res.status === 200 ? await res.text() : null;
    },
    { timeoutMs: 15_000 },
  );
  expect(text.split('\n').filter((line) => line !== '')).toHaveLength(3);
}

async function problemOf(res: Response) {
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    code: ((await res.json()) as { code: string }).code,
  };
}

describe('exports beside /metrics', () => {
  // Regression: exports shared the /metrics connections, so as many stalled exporters as there were
  // connections made every /metrics request answer 503.
  it('answers /metrics while EXPORT_POOL_SIZE + METRICS_POOL_SIZE exporters stall', async () => {
    // Each one holds its connection once its head arrived (or was refused).
    for (let i = 0; i < 4; i++) await open(shared, bigExport);
    const res = await fetch(`${shared.url}/metrics?from=${bigFrom}&to=${bigTo}`);
    expect({ status: res.status, body: await res.json() }).toMatchObject({
      status: 200,
      body: { totals: { count: rowCount, unique_users: 100 } },
    });
  });

  it('refuses an export at once with 503 exports_busy while EXPORT_POOL_SIZE exports run', async () => {
    const running = [await open(shared, bigExport), await open(shared, bigExport)];
    expect(running.map((r) => r.status)).toEqual([200, 200]);
    const res = await fetch(`${shared.url}/events/export?${smallExport}`);
    expect(await problemOf(res)).toEqual({ status: 503, retryAfter: '1', code: 'exports_busy' });
  });
});

describe('EXPORT_MAX_PER_CLIENT', () => {
  it('answers a third concurrent export from one client with 429 too_many_exports', async () => {
    const running = [await open(perClient, bigExport), await open(perClient, bigExport)];
    expect(running.map((r) => r.status)).toEqual([200, 200]);
    const res = await fetch(`${perClient.url}/events/export?${smallExport}`);
    expect(await problemOf(res)).toEqual({
      status: 429,
      retryAfter: '1',
      code: 'too_many_exports',
    });
    // Another client is not held back by this one.
    expect((await open(perClient, smallExport, '127.0.0.2')).status).toBe(200);
  });

  it('lets the client export again once its exports are over', async () => {
    const running = [await open(perClient, bigExport), await open(perClient, bigExport)];
    expect(running.map((r) => r.status)).toEqual([200, 200]);
    for (const reader of running) reader.destroy();
    await expectExportsWork(perClient);
  });
});

describe('EXPORT_MIN_BYTES_PER_SEC', () => {
  it.each([
    ['a few bytes', 16],
    // Enough for the socket to report room every few seconds: a stall timer alone never fires.
    ['200 kB', 200_000],
  ])(
    'cuts a reader that takes %s a second, and returns its connection',
    async (_, bytesPerSecond) => {
      const { taken, complete } = await readWholeExport(paced, bytesPerSecond);
      expect({ complete, cutEarly: taken < 20_000_000 }).toEqual({
        complete: false,
        cutEarly: true,
      });
      await expectExportsWork(paced);
    },
    2 * cutWithinMs,
  );

  it(
    'streams the whole export to a steady reader four times faster than the floor',
    async () => {
      // In steps of 100 ms: each step's bytes arrive well within the 5 s window.
      const { taken, complete } = await readWholeExport(paced, 4_000_000);
      expect({ complete, atLeastTheRows: taken > rowCount * 1000 }).toEqual({
        complete: true,
        atLeastTheRows: true,
      });
    },
    2 * cutWithinMs,
  );
});

describe('EXPORT_MAX_DURATION_MS', () => {
  it(
    'cuts an export still streaming at the limit, and returns its connection',
    async () => {
      // 1 MB/s: the whole export would take about 40 s.
      const { taken, complete } = await readWholeExport(brief, 1_000_000);
      expect({ complete, cutEarly: taken < 20_000_000 }).toEqual({
        complete: false,
        cutEarly: true,
      });
      await expectExportsWork(brief);
    },
    2 * cutWithinMs,
  );
});

describe('the export transaction', () => {
  it(
    'is ended by Postgres when the server process stops serving it',
    async () => {
      const server = await spawnServer(db.dsn, {
        INGEST_WORKERS: '1',
        EXPORT_BATCH_ROWS: '200',
        // Long enough to freeze the process before its reader is cut; the idle-in-transaction
        // timeout is this + 5 s.
        EXPORT_STALL_TIMEOUT_MS: '10000',
      });
      try {
        const reader = await openExportReader(Number(new URL(server.url).port), bigExport);
        readers.push(reader);
        expect(reader.status).toBe(200);
        const exportBackend = () =>
          db.query<{ pid: number; state: string }>(
            `SELECT pid, state FROM pg_stat_activity
           WHERE datname = current_database() AND application_name = $1`,
            [`pulse-export-${server.child.pid}`],
          );
        await waitUntil(
          'the export to wait for its reader, idle in transaction',
          async () => (await exportBackend()).some((b) => b.state === 'idle in transaction'),
          { timeoutMs: 15_000 },
        );
        // A frozen process can neither cut its reader nor end the transaction: only Postgres can.
        server.child.kill('SIGSTOP');
        try {
          await waitUntil(
            'Postgres to end the export session',
            async () => (await exportBackend()).length === 0,
            {
              timeoutMs: cutWithinMs,
              intervalMs: 250,
            },
          );
        } finally {
          server.child.kill('SIGCONT');
        }
        expect((await reader.drain()).complete).toBe(false);
        // The pool replaced the connection Postgres ended.
        const res = await fetch(`${server.url}/events/export?${smallExport}`);
        expect({ status: res.status, lines: (await res.text()).split('\n').length }).toEqual({
          status: 200,
          lines: 4,
        });
      } finally {
        server.child.kill('SIGKILL');
        await server.exited;
      }
    },
    2 * cutWithinMs,
  );
});
