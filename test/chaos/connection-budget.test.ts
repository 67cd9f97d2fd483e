// A Postgres with max_connections=20. A configuration that would open more connections than it
// accepts is refused at start-up with a message saying so; one that fits only if nobody else
// connects starts with a warning; and when other clients take every slot, so that the server's
// own connections fail with 53300 too_many_connections, it answers 503 + Retry-After (never a 500,
// never a crash), /readyz says 503 too (the probe's own connection still works: the writers'
// failures count), and it recovers by itself once the slots are free.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { judge, OutcomeLog, readStoredIds, startLoad } from '../helpers/load.js';
import { sleep, waitUntil } from '../helpers/wait-until.js';
import { startChaosPostgres, type ChaosPostgres } from './lib/chaos-postgres.js';
import { rssMb, summarize, writeScenarioResults } from './lib/scenario-results.js';
import { linesLeakingSecrets, secretsOf } from './lib/secret-leaks.js';
import { stopServer } from './lib/server-probes.js';
import { killHard, readyStatus, spawnBuiltServer, type ChaosServer } from './lib/server-process.js';

const apiKey = 'chaos-budget-key-0b7d4e9c2f61';
const maxConnections = 20;
/** max_connections less superuser_reserved_connections (3, the default). */
const availableConnections = maxConnections - 3;
const ingestTimeoutMs = 3000;

let db: ChaosPostgres;
const servers: ChaosServer[] = [];
const holders: pg.Client[] = [];

beforeAll(async () => {
  db = await startChaosPostgres({ extraFlags: ['-c', `max_connections=${maxConnections}`] });
});
afterAll(async () => {
  await releaseHolders();
  for (const server of servers) await killHard(server);
  await db?.destroy();
});

/** Another application holding connections (not 'pulse-', so the budget counts it as in use). */
async function holdConnections(max: number): Promise<number> {
  let opened = 0;
  for (; opened < max; opened++) {
    const client = new pg.Client({ connectionString: db.dsn, application_name: 'chaos-holder' });
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (err) {
      if ((err as { code?: string }).code === '53300') break; // every slot is taken
      throw err;
    }
    holders.push(client);
  }
  return opened;
}

async function releaseHolders(): Promise<void> {
  await Promise.all(holders.splice(0).map((c) => c.end().catch(() => undefined)));
}

describe('connection budget', () => {
  it('refuses at start-up a configuration that needs more connections than Postgres accepts', async () => {
    // 8 × 2 + 4 + 2 + 3 = 25 connections against 17 available.
    const started = spawnBuiltServer(db.dsn, {
      API_KEYS: apiKey,
      INGEST_WORKERS: '8',
      PG_POOL_SIZE_PER_WORKER: '2',
      METRICS_POOL_SIZE: '4',
    });
    const error = await started.then(
      (server) => {
        servers.push(server);
        return 'it started';
      },
      (err: Error) => err.message,
    );
    expect(error).toMatch(/server exited \(1\) before listening/);
    expect(error).toContain(
      `this configuration opens 25 Postgres connections (CLUSTER_PROCESSES × (INGEST_WORKERS × PG_POOL_SIZE_PER_WORKER + METRICS_POOL_SIZE + EXPORT_POOL_SIZE + 3)) but the server accepts ${availableConnections}`,
    );
    expect(linesLeakingSecrets(error.split('\n'), secretsOf(db.dsn, [apiKey]))).toEqual([]);
  });

  it('warns at start-up when other clients leave too few connections, and under 53300 answers 503 + Retry-After, then recovers', async () => {
    const startedAt = Date.now();
    await db.query('TRUNCATE events');
    // 2 × 1 + 4 + 2 + 3 = 11 needed; 12 held by someone else: 23 > 17.
    expect(await holdConnections(12)).toBe(12);
    const server = await spawnBuiltServer(db.dsn, {
      API_KEYS: apiKey,
      INGEST_WORKERS: '2',
      INGEST_TIMEOUT_MS: String(ingestTimeoutMs),
    });
    servers.push(server);
    const warning = server.lines.find((l) => l.includes('may hit \\"too many clients\\"'));
    expect(warning).toBeDefined();
    expect(JSON.parse(warning!)).toMatchObject({ level: 40, needed: 11, available: 17 });
    await waitUntil('ready', async () => (await readyStatus(server.url)) === 200, {
      timeoutMs: 30_000,
    });
    const rssStart = rssMb(server.child.pid!);

    // Take every slot left. The writers have not connected yet (they connect on their first
    // batch), so every insert now meets 53300.
    const extra = await holdConnections(maxConnections);
    const log = new OutcomeLog();
    const load = startLoad({
      url: `${server.url}/events/bulk`,
      log,
      clients: 4,
      eventsPerRequest: 10,
      maxRequests: 100_000,
      maxDurationMs: 60_000,
      requestTimeoutMs: 15_000,
      pauseMs: 10,
      headers: { 'x-api-key': apiKey },
    });
    let firstAckMs = Infinity;
    let rssUnderPressure = 0;
    let readyUnderPressure = 0;
    let readyAfter = 0;
    try {
      await waitUntil(
        '503s while every slot is taken',
        () => log.count((r) => r.status === 503) >= 20,
        {
          timeoutMs: 30_000,
        },
      );
      // The probe's own connection is fine; the writers' failures must still make it not ready.
      readyUnderPressure = await readyStatus(server.url);
      await sleep(ingestTimeoutMs + 500); // long enough for requests to reach their deadline
      rssUnderPressure = rssMb(server.child.pid!);
      await releaseHolders();
      const releasedAt = Date.now();
      const firstAck = await waitUntil(
        'a 202 once the slots are free',
        () => log.records.find((r) => r.status === 202 && r.answeredAt >= releasedAt),
        { timeoutMs: 30_000 },
      );
      firstAckMs = firstAck.answeredAt - releasedAt;
      const acked = log.count((r) => r.status === 202);
      await waitUntil(
        'load to be acknowledged again',
        () => log.count((r) => r.status === 202) - acked >= 50,
        {
          timeoutMs: 30_000,
        },
      );
      readyAfter = await readyStatus(server.url);
    } finally {
      load.stop();
      await load.done;
    }
    const rssEnd = rssMb(server.child.pid!);
    const alive = server.child.exitCode === null && server.child.signalCode === null;
    await stopServer(server);

    const refused = new Set(
      log.records.filter((r) => r.code === 'database_unavailable').flatMap((r) => r.ids),
    );
    const verdict = judge(log, await readStoredIds(db), refused);
    const notRetryable = log.records
      .filter((r) => r.status !== 202 && !(r.status === 503 && r.retryAfter !== null))
      .map((r) => `${r.status} ${r.code ?? r.error}`);
    const hit53300 = server.lines.some((l) => l.includes('"sqlstate":"53300"'));
    const leaks = linesLeakingSecrets(server.lines, secretsOf(db.dsn, [apiKey]));
    const failures = [
      ...(alive ? [] : ['the server process died']),
      ...(hit53300 ? [] : ['the server never met 53300']),
      ...(notRetryable.length > 0 ? [`${notRetryable.length} answers not 202/503`] : []),
      ...(firstAckMs > 5000 ? [`first 202 ${firstAckMs} ms after the slots were freed`] : []),
      ...(readyUnderPressure !== 503 ? [`/readyz ${readyUnderPressure} under 53300`] : []),
      ...(readyAfter !== 200 ? [`/readyz ${readyAfter} after recovery`] : []),
      ...(leaks.length > 0 ? [`${leaks.length} log lines leak a secret`] : []),
    ];
    const figures = summarize('connection-budget', startedAt, log, verdict, {
      recovery_ms: [firstAckMs],
      rss_mb: { start: rssStart, end: rssEnd, max: Math.max(rssStart, rssUnderPressure, rssEnd) },
      extra: {
        max_connections: maxConnections,
        held_by_others: 12 + extra,
        recovery_ms_meaning: ['slots freed → first 202'],
        hit_53300: hit53300,
        readyz_under_pressure: readyUnderPressure,
        readyz_after_recovery: readyAfter,
        startup_warning: Boolean(warning),
        answers_by_code: Object.fromEntries(
          [...new Set(log.records.map((r) => r.code ?? String(r.status)))].map((c) => [
            c,
            log.count((r) => (r.code ?? String(r.status)) === c),
          ]),
        ),
        server_alive: alive,
      },
      failures,
    });
    writeScenarioResults(figures);

    expect(alive).toBe(true);
    expect(hit53300).toBe(true);
    expect({ readyUnderPressure, readyAfter }).toEqual({
      readyUnderPressure: 503,
      readyAfter: 200,
    });
    expect(notRetryable).toEqual([]);
    expect(firstAckMs).toBeLessThanOrEqual(5000);
    expect(verdict.lostAcked).toEqual([]);
    expect(verdict.phantom).toEqual([]);
    expect(verdict.leakedRejected).toEqual([]);
    expect(verdict.duplicated).toEqual([]);
    expect(leaks).toEqual([]);
    expect(figures.pass).toBe(true);
  });
});
