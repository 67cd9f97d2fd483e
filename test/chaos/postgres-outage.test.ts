// Postgres goes away under load, three ways: a graceful stop, kill -9 of the whole postmaster tree,
// and SIGSTOP of the tree for 15 s (the hang: nothing refuses, nothing answers). The server is
// never restarted: it answers 503 + Retry-After within its deadline, says not ready while the
// database is gone, and recovers by itself (docs/RELIABILITY.md, scenario 2).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { judge, OutcomeLog, readStoredIds, startLoad } from '../helpers/load.js';
import { sleep, waitUntil } from '../helpers/wait-until.js';
import { startChaosPostgres, type ChaosPostgres } from './lib/chaos-postgres.js';
import { rssMb, summarize, writeScenarioResults } from './lib/scenario-results.js';
import { linesLeakingSecrets, secretsOf, sendSecretBearingRequests } from './lib/secret-leaks.js';
import { stopServer } from './lib/server-probes.js';
import { readyStatus, spawnBuiltServer, type ChaosServer } from './lib/server-process.js';

const apiKey = 'chaos-outage-key-9b3e71c5d2a8';
const long = process.env.CHAOS_LONG === '1';
/** Short timeouts so the hang is noticed fast; still a ladder: connect < statement < query < request. */
const ingestTimeoutMs = 4000;
const writerThreads = 2;
const serverEnv = {
  API_KEYS: apiKey,
  INGEST_WORKERS: String(writerThreads),
  INGEST_TIMEOUT_MS: String(ingestTimeoutMs),
  PG_CONNECT_TIMEOUT_MS: '1000',
  PG_STATEMENT_TIMEOUT_MS: '2000',
  PG_QUERY_TIMEOUT_MS: '3000',
};
/** What the scenario promises; the margin covers reading the body and the answer's trip over loopback. */
const deadlineMarginMs = 1000;
const readyAfterRecoveryMs = 2000;
const firstAckAfterRecoveryMs = 5000;

let db: ChaosPostgres;
let server: ChaosServer;
let serverPid: number;

beforeAll(async () => {
  db = await startChaosPostgres();
  server = await spawnBuiltServer(db.dsn, serverEnv);
  serverPid = server.child.pid!;
  await waitUntil('the server to be ready', async () => (await readyStatus(server.url)) === 200, {
    timeoutMs: 30_000,
  });
});
afterAll(async () => {
  if (server) await stopServer(server);
  await db?.destroy();
});

interface Outage {
  readonly name: string;
  /** Takes the database away. */
  readonly fail: () => Promise<void>;
  readonly downForMs: number;
  /** Brings it back; resolves once Postgres accepts connections. */
  readonly recover: () => Promise<void>;
}

const outages: readonly Outage[] = [
  {
    name: 'graceful-stop',
    fail: () => db.stop(),
    downForMs: long ? 30_000 : 5000,
    recover: () => db.start(),
  },
  {
    name: 'kill9-postmaster',
    fail: () => db.crash(),
    downForMs: long ? 30_000 : 5000,
    recover: () => db.start(),
  },
  {
    name: 'sigstop-15s',
    fail: () => Promise.resolve(db.signalTree('SIGSTOP')),
    downForMs: long ? 60_000 : 15_000,
    recover: () => Promise.resolve(db.signalTree('SIGCONT')),
  },
];

describe('Postgres outage under load', () => {
  it.each(outages)(
    '$name: 503 + Retry-After within the deadline, not ready while down, recovers by itself, loses nothing acknowledged',
    async (outage) => {
      const startedAt = Date.now();
      await db.query('TRUNCATE events');
      const log = new OutcomeLog();
      const load = startLoad({
        url: `${server.url}/events/bulk`,
        log,
        // Enough waiting events for batches on both writer threads, so both hold a connection.
        clients: 6,
        eventsPerRequest: 20,
        maxRequests: 200_000,
        maxDurationMs: 180_000,
        // Far beyond the server's deadline: a request the server forgets shows up as a timeout.
        requestTimeoutMs: 20_000,
        pauseMs: 5,
        headers: { 'x-api-key': apiKey },
      });
      const acked = () => log.count((r) => r.status === 202);
      const rss = [rssMb(serverPid)];
      const rssSampler = setInterval(() => rss.push(rssMb(serverPid)), 500);
      let readyMs = Infinity;
      let firstAckMs = Infinity;
      let notReadyDuringOutage = false;
      let baselineConnections = 0;
      let connectionsAfter = -1;
      let totalConnectionsAfter = -1;
      let secretProbeStatuses: number[] = [];
      try {
        await waitUntil('load to be acknowledged', () => acked() >= 100, { timeoutMs: 30_000 });
        // Both writer threads have connected (they connect on their first batch).
        baselineConnections = await waitUntil(
          'both writer threads to hold a connection',
          async () =>
            (await db.connectionsOf(serverPid, 'writer')) === writerThreads ? writerThreads : 0,
          { timeoutMs: 15_000, intervalMs: 100 },
        );

        await outage.fail();
        const failedAt = Date.now();
        // Readiness must turn false while the database is gone (the hang needs a query timeout).
        const polls: number[] = [];
        while (Date.now() - failedAt < outage.downForMs) {
          polls.push(await readyStatus(server.url));
          await sleep(100);
        }
        notReadyDuringOutage = polls.includes(503);
        // Error paths log the most: carry the key into them while the database is gone.
        secretProbeStatuses = await sendSecretBearingRequests(server.url, apiKey);

        await outage.recover();
        const recoveredAt = Date.now();
        await waitUntil(
          'readiness after recovery',
          async () => (await readyStatus(server.url)) === 200,
          {
            timeoutMs: 30_000,
            intervalMs: 25,
          },
        );
        readyMs = Date.now() - recoveredAt;
        const firstAck = await waitUntil(
          'a 202 after recovery',
          () => log.records.find((r) => r.status === 202 && r.answeredAt >= recoveredAt),
          { timeoutMs: 30_000 },
        );
        firstAckMs = firstAck.answeredAt - recoveredAt;
        const ackedAfter = acked();
        await waitUntil('load to be acknowledged again', () => acked() - ackedAfter >= 100, {
          timeoutMs: 30_000,
        });
        // The writers' connections the outage broke are replaced, and none leaks: the same count
        // as before (the admin pool's varies between 1 and 2 with its probe/refresh overlap).
        connectionsAfter = await waitUntil(
          'the writers’ connections back at their baseline',
          async () => {
            const n = await db.connectionsOf(serverPid, 'writer');
            return n === baselineConnections ? n : undefined;
          },
          { timeoutMs: 15_000, intervalMs: 100 },
        ).catch(() => db.connectionsOf(serverPid, 'writer'));
        totalConnectionsAfter = await db.connectionsOf(serverPid);
      } finally {
        load.stop();
        await load.done;
        clearInterval(rssSampler);
      }

      // Refused before enqueueing (the batcher knew the database was down): definitely not stored.
      const refusedCodes = new Set(['database_unavailable', 'queue_full']);
      const refused = new Set(
        log.records.filter((r) => refusedCodes.has(r.code ?? '')).flatMap((r) => r.ids),
      );
      const verdict = judge(log, await readStoredIds(db), refused);
      const notRetryable = log.records
        .filter(
          (r) =>
            r.status !== 202 &&
            !(
              r.status === 503 &&
              r.retryAfter !== null &&
              r.contentType === 'application/problem+json'
            ),
        )
        .map((r) => `${r.status} ${r.code ?? r.error}`);
      const overDeadline = log.records.filter(
        (r) => r.answeredAt - r.sentAt > ingestTimeoutMs + deadlineMarginMs,
      );
      const leaks = linesLeakingSecrets(server.lines, secretsOf(db.dsn, [apiKey]));
      const alive = server.child.exitCode === null && server.child.signalCode === null;
      const failures = [
        ...(alive ? [] : ['the server process died']),
        ...(notRetryable.length > 0
          ? [`${notRetryable.length} answers other than 202 or 503 + Retry-After`]
          : []),
        ...(overDeadline.length > 0
          ? [`${overDeadline.length} requests outlived the deadline`]
          : []),
        ...(notReadyDuringOutage ? [] : ['/readyz never said 503 during the outage']),
        ...(readyMs > readyAfterRecoveryMs ? [`ready ${readyMs} ms after recovery`] : []),
        ...(firstAckMs > firstAckAfterRecoveryMs
          ? [`first 202 ${firstAckMs} ms after recovery`]
          : []),
        ...(connectionsAfter === baselineConnections
          ? []
          : [
              `${connectionsAfter} writer connections after recovery, ${baselineConnections} before`,
            ]),
        ...(leaks.length > 0 ? [`${leaks.length} log lines leak a secret`] : []),
        ...(secretProbeStatuses.join() === '401,400,401,401'
          ? []
          : [`secret-bearing requests answered ${secretProbeStatuses.join()}`]),
      ];
      const figures = summarize(`postgres-outage-${outage.name}`, startedAt, log, verdict, {
        recovery_ms: [readyMs, firstAckMs],
        rss_mb: { start: rss[0]!, end: rss.at(-1)!, max: Math.max(...rss) },
        extra: {
          outage_ms: outage.downForMs,
          recovery_ms_meaning: ['recovery → /readyz 200', 'recovery → first 202'],
          ready_after_recovery_ms: readyMs,
          first_202_after_recovery_ms: firstAckMs,
          not_ready_during_outage: notReadyDuringOutage,
          ingest_timeout_ms: ingestTimeoutMs,
          requests_over_deadline: overDeadline.length,
          answers_by_code: Object.fromEntries(
            [...new Set(log.records.map((r) => r.code ?? String(r.status)))].map((c) => [
              c,
              log.count((r) => (r.code ?? String(r.status)) === c),
            ]),
          ),
          writer_connections_before: baselineConnections,
          writer_connections_after: connectionsAfter,
          all_connections_after: totalConnectionsAfter,
          server_pid: serverPid,
          server_alive: alive,
          secret_probe_statuses: secretProbeStatuses,
        },
        failures,
      });
      writeScenarioResults(figures);

      expect(alive).toBe(true);
      expect(server.child.pid).toBe(serverPid);
      expect(notRetryable).toEqual([]);
      expect(overDeadline.map((r) => r.answeredAt - r.sentAt)).toEqual([]);
      expect(notReadyDuringOutage).toBe(true);
      expect(readyMs).toBeLessThanOrEqual(readyAfterRecoveryMs);
      expect(firstAckMs).toBeLessThanOrEqual(firstAckAfterRecoveryMs);
      expect(verdict.lostAcked).toEqual([]);
      expect(verdict.phantom).toEqual([]);
      expect(verdict.leakedRejected).toEqual([]);
      expect(verdict.duplicated).toEqual([]);
      expect(connectionsAfter).toBe(baselineConnections);
      expect(secretProbeStatuses).toEqual([401, 400, 401, 401]);
      expect(leaks).toEqual([]);
      expect(figures.pass).toBe(true);
    },
  );
});
