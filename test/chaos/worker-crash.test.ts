// Scenario 4 of docs/RELIABILITY.md: a writer thread dies under load, in each of the four ways a
// thread really dies (uncaught exception in a timer, unhandled rejection, process.exit, heap
// exhaustion against its resourceLimits). The 'worker-crash' fault (FAULT_INJECTION, test-only)
// crashes the thread that receives an event named `__fault_worker_crash:<mode>`.
// Expected: the request carrying the trigger gets 503 + Retry-After (its outcome is in doubt),
// never 202 and never a hang; every other request gets 202 or 503, and the set oracle holds; the
// requests batched with the trigger are split off from it and stored;
// Piscina has a fresh thread serving (with its own connections) within 2 s; the dead threads'
// connections are gone, so the writer backends never exceed threads × pool size.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  workerCrashEventPrefix,
  workerCrashModes,
  type WorkerCrashMode,
} from '../../src/faults/fault-injection.js';
import {
  judge,
  OutcomeLog,
  readStoredIds,
  sendBulk,
  startLoad,
  type RequestRecord,
} from '../helpers/load.js';
import { faultInjectionEnv } from '../helpers/fault-injection.js';
import { sleep, waitUntil } from '../helpers/wait-until.js';
import { startChaosPostgres, type ChaosPostgres } from './lib/chaos-postgres.js';
import { rssMb, summarize, writeScenarioResults } from './lib/scenario-results.js';
import { spawnBuiltServer, type ChaosServer } from './lib/server-process.js';
import { readGauge, stopServer } from './lib/server-probes.js';

const threads = 2;
const poolPerThread = 2; // two batches co-resident on a thread: a crash takes both down
const crashesPerMode = 2;
/** The promised bound for Piscina to have a replacement thread serving. */
const recoveryBoundMs = 2000;
/** Far beyond the few crashes that isolate a trigger (a heap crash takes a second or two here),
 *  so an answer before it comes from crash handling, not from the deadline sweep. */
const ingestTimeoutMs = 30_000;

let db: ChaosPostgres;
let server: ChaosServer;

beforeAll(async () => {
  db = await startChaosPostgres();
  server = await spawnBuiltServer(db.dsn, {
    ...faultInjectionEnv('worker-crash'),
    INGEST_WORKERS: String(threads),
    PG_POOL_SIZE_PER_WORKER: String(poolPerThread),
    INGEST_TIMEOUT_MS: String(ingestTimeoutMs),
  });
});
afterAll(async () => {
  if (server) await stopServer(server);
  await db?.destroy();
});

/** Writer backends by thread: each thread's application_name ends in `:<threadId>`. */
async function writerBackends(): Promise<Map<string, number>> {
  const rows = await db.query<{ application_name: string; n: number }>(
    `SELECT application_name, count(*)::int AS n FROM pg_stat_activity
     WHERE application_name LIKE 'pulse-writer%:%' GROUP BY 1`,
  );
  return new Map(rows.map((r) => [r.application_name, r.n]));
}

function sum(map: Map<string, number>): number {
  return [...map.values()].reduce((a, b) => a + b, 0);
}

function crashRequest(mode: WorkerCrashMode) {
  return [
    {
      event_id: randomUUID(),
      event_name: `${workerCrashEventPrefix}${mode}`,
      user_id: 'crasher',
      timestamp: 1_700_000_000,
    },
    ...Array.from({ length: 3 }, (_, i) => ({
      event_id: randomUUID(),
      event_name: 'beside-the-crash',
      user_id: 'crasher',
      timestamp: 1_700_000_000 + i,
    })),
  ];
}

interface CrashFigures {
  readonly mode: WorkerCrashMode;
  readonly status: number;
  readonly code: string | undefined;
  readonly retryAfter: string | null;
  readonly answeredInMs: number;
  readonly recoveryMs: number;
  readonly threadsBefore: string[];
  readonly threadsAfter: string[];
  /** Load requests answered 503 between the trigger and its answer (co-batched requests). */
  readonly blastRadius503: number;
}

describe('a writer thread crashing under load', () => {
  it('answers 503 for the requests on it, keeps the oracle, and is replaced within 2 s', async () => {
    const startedAt = Date.now();
    const log = new OutcomeLog();
    const load = startLoad({
      url: `${server.url}/events/bulk`,
      log,
      // Enough waiting events (≥ 100, see the batcher) that batches run on both threads at once.
      clients: 8,
      eventsPerRequest: 50,
      maxRequests: 1_000_000,
      maxDurationMs: 300_000,
      requestTimeoutMs: ingestTimeoutMs + 5000,
      pauseMs: 5,
    });
    const rss = { start: rssMb(server.child.pid!), max: 0 };
    let maxWriterBackends = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        maxWriterBackends = Math.max(maxWriterBackends, sum(await writerBackends()));
        rss.max = Math.max(rss.max, rssMb(server.child.pid!));
        await sleep(100);
      }
    })();

    const crashes: CrashFigures[] = [];
    const triggers: RequestRecord[] = [];
    let baseline = 0;
    try {
      // Warm-up: both threads have opened connections (a thread opens its second one only when
      // two of its batches overlap, so the baseline may be below threads × pool size).
      await waitUntil(
        'both writer threads to hold connections',
        async () => (await writerBackends()).size === threads,
        { timeoutMs: 20_000 },
      );
      // Steady state: the most backends seen over 2 s of load before any crash.
      await sleep(2000);
      baseline = maxWriterBackends;

      for (const mode of workerCrashModes) {
        for (let rep = 0; rep < crashesPerMode; rep++) {
          const threadsBefore = [...(await writerBackends()).keys()];
          const record = await sendBulk(`${server.url}/events/bulk`, crashRequest(mode), {
            requestTimeoutMs: ingestTimeoutMs + 5000,
          });
          triggers.push(record);
          // Replacement serving: as many threads as configured, holding connections, at least one of
          // them new, none of them one that died.
          let recoveryMs = -1;
          try {
            await waitUntil(
              'a replacement writer thread serving',
              async () => {
                const backends = await writerBackends();
                const gauge = await readGauge(server.url, 'pulse_writer_threads');
                return (
                  gauge === threads &&
                  backends.size === threads &&
                  [...backends.keys()].some((t) => !threadsBefore.includes(t))
                );
              },
              { timeoutMs: 10_000, intervalMs: 25 },
            );
            recoveryMs = Date.now() - record.answeredAt;
          } catch {
            // recorded as -1 and reported by the assertion below
          }
          crashes.push({
            mode,
            status: record.status,
            code: record.code,
            retryAfter: record.retryAfter,
            answeredInMs: record.answeredAt - record.sentAt,
            recoveryMs,
            threadsBefore,
            threadsAfter: [...(await writerBackends()).keys()],
            blastRadius503: log.count(
              (r) =>
                r.status === 503 &&
                r.answeredAt >= record.sentAt &&
                r.answeredAt <= record.answeredAt + 50,
            ),
          });
          await sleep(500); // load runs undisturbed between crashes
        }
      }
    } finally {
      load.stop();
      await load.done;
      sampling = false;
      await sampler;
    }
    await sleep(500); // let a dying thread's sockets close
    const finalBackends = await writerBackends();
    const rssEnd = rssMb(server.child.pid!);
    for (const t of triggers) log.records.push(t);

    const verdict = judge(log, await readStoredIds(db));
    const unexpected = log.records.filter((r) => r.status !== 202 && r.status !== 503);
    const serverAlive = server.child.exitCode === null && server.child.signalCode === null;
    const figures = summarize('worker-crash', startedAt, log, verdict, {
      recovery_ms: crashes.map((c) => c.recoveryMs),
      rss_mb: { start: rss.start, end: rssEnd, max: Math.max(rss.max, rssEnd) },
      extra: {
        threads,
        pool_per_thread: poolPerThread,
        crashes,
        writer_backends: {
          baseline,
          max: maxWriterBackends,
          final: sum(finalBackends),
          final_threads: finalBackends.size,
        },
        server_alive: serverAlive,
        load_503s: log.count((r) => r.status === 503) - triggers.length,
      },
      failures: [],
    });
    writeScenarioResults(figures);

    expect(serverAlive).toBe(true);
    for (const c of crashes) {
      expect({ mode: c.mode, status: c.status, code: c.code, retryAfter: c.retryAfter }).toEqual({
        mode: c.mode,
        status: 503,
        code: 'ingest_timeout',
        retryAfter: '1',
      });
    }
    // Not a hang: answered by crash handling, before the ingest deadline would have answered it.
    expect(Math.max(...crashes.map((c) => c.answeredInMs))).toBeLessThan(ingestTimeoutMs);
    expect(crashes.filter((c) => c.recoveryMs < 0 || c.recoveryMs > recoveryBoundMs)).toEqual([]);
    expect(unexpected.map((r) => ({ status: r.status, error: r.error }))).toEqual([]);
    expect(verdict).toEqual({ lostAcked: [], leakedRejected: [], phantom: [], duplicated: [] });
    // No leak: a dead thread's backends go with it.
    expect(maxWriterBackends).toBeLessThanOrEqual(threads * poolPerThread);
    expect(sum(finalBackends)).toBeLessThanOrEqual(Math.max(baseline, threads * poolPerThread));
    expect(finalBackends.size).toBe(threads);
  });

  it('treats the trigger as a normal event when FAULT_INJECTION is unset', async () => {
    const inert = await spawnBuiltServer(db.dsn, {});
    try {
      const events = crashRequest('exit');
      const record = await sendBulk(`${inert.url}/events/bulk`, events, {
        requestTimeoutMs: 10_000,
      });
      expect({ status: record.status, body: record.body }).toEqual({
        status: 202,
        body: { accepted_count: 4, inserted: 4, duplicates: 0 },
      });
      expect(await readGauge(inert.url, 'pulse_writer_threads')).toBe(2);
    } finally {
      await stopServer(inert);
    }
  });
});

describe.each(['durable', 'queued'] as const)('a crashing request with INGEST_ACK=%s', (ack) => {
  it('is the only one refused: the other requests in its batch are stored and acknowledged', async () => {
    // One writer, one connection, and batches that wait for it (no max-wait flush): while a plug
    // request waits on a table lock, the trigger and its neighbours queue into one batch.
    const crashing = await spawnBuiltServer(db.dsn, {
      ...faultInjectionEnv('worker-crash'),
      INGEST_ACK: ack,
      INGEST_WORKERS: '1',
      PG_POOL_SIZE_PER_WORKER: '1',
      BATCH_MAX_WAIT_MS: '60000',
      INGEST_TIMEOUT_MS: '45000',
      PG_STATEMENT_TIMEOUT_MS: '45000',
      PG_QUERY_TIMEOUT_MS: '50000',
    });
    const locker = new pg.Client({ connectionString: db.dsn });
    try {
      await locker.connect();
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE events IN ACCESS EXCLUSIVE MODE');
      const url = `${crashing.url}/events/bulk`;
      const send = (events: { event_id: string }[]) =>
        sendBulk(url, events, { requestTimeoutMs: 50_000 });
      const plug = send([neighbourEvent()]);
      await waitUntil(
        'the plug to wait on the lock',
        async () =>
          (
            await db.query(
              `SELECT 1 FROM pg_stat_activity
               WHERE application_name LIKE 'pulse-writer%' AND wait_event_type = 'Lock'`,
            )
          ).length === 1,
        { timeoutMs: 10_000 },
      );
      const trigger = send(crashRequest('exit'));
      const neighbours = Array.from({ length: 6 }, () =>
        send([neighbourEvent(), neighbourEvent()]),
      );
      await waitUntil(
        'the trigger and its neighbours to be queued',
        async () => (await readGauge(crashing.url, 'pulse_queue_depth_events')) === 1 + 4 + 12,
        { timeoutMs: 10_000 },
      );
      await locker.query('COMMIT');

      const answered = await Promise.all([plug, trigger, ...neighbours]);
      const shape = (r: RequestRecord) => ({ status: r.status, code: r.code, body: r.body });
      const stored = { status: 202, code: undefined };
      expect(answered.map(shape)).toEqual([
        {
          ...stored,
          body:
            ack === 'durable'
              ? { accepted_count: 1, inserted: 1, duplicates: 0 }
              : { accepted_count: 1, status: 'queued' },
        },
        ack === 'durable'
          ? { status: 503, code: 'ingest_timeout', body: expect.anything() as unknown }
          : { ...stored, body: { accepted_count: 4, status: 'queued' } },
        ...neighbours.map(() => ({
          ...stored,
          body:
            ack === 'durable'
              ? { accepted_count: 2, inserted: 2, duplicates: 0 }
              : { accepted_count: 2, status: 'queued' },
        })),
      ]);
      const [plugRecord, triggerRecord, ...neighbourRecords] = answered;
      const expectedIds = [plugRecord, ...neighbourRecords].flatMap((r) => r.ids);
      const sentIds = new Set(answered.flatMap((r) => r.ids));
      const storedOfOurs = async () =>
        [...(await readStoredIds(db)).ids].filter((id) => sentIds.has(id));
      await waitUntil(
        'the neighbours to be stored',
        async () => (await storedOfOurs()).length >= expectedIds.length,
        { timeoutMs: 20_000, intervalMs: 100 },
      );
      expect(new Set(await storedOfOurs())).toEqual(new Set(expectedIds));
      expect(triggerRecord.ids.length).toBe(4);
      if (ack === 'queued')
        expect(crashing.lines.filter((l) => l.includes('queued events dropped')).length).toBe(1);
    } finally {
      await locker.end().catch(() => undefined);
      await stopServer(crashing);
    }
  });
});

function neighbourEvent() {
  return {
    event_id: randomUUID(),
    event_name: 'batched-with-the-crash',
    user_id: 'neighbour',
    timestamp: 1_700_000_000,
  };
}
