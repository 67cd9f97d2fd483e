// SIGTERM under load: the server stops accepting, answers what it already took, writes every
// accepted event and exits 0 within SHUTDOWN_TIMEOUT_MS; every 202 is stored. In durable mode a 202
// means committed already; in queued mode it is the drain that must write them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { judge, OutcomeLog, readStoredIds, startLoad } from '../helpers/load.js';
import { waitUntil } from '../helpers/wait-until.js';
import { startChaosPostgres, type ChaosPostgres } from './lib/chaos-postgres.js';
import { rssMb, summarize, writeScenarioResults } from './lib/scenario-results.js';
import { linesLeakingSecrets, secretsOf } from './lib/secret-leaks.js';
import { killHard, readyStatus, spawnBuiltServer, type ChaosServer } from './lib/server-process.js';

const apiKey = 'chaos-sigterm-key-5c8e2f0a9d14';
const long = process.env.CHAOS_LONG === '1';
const shutdownTimeoutMs = 10_000;
/** A request sent this long after the signal was certainly read after it (signal delivery and
 *  the handler's first step take well under this). */
const signalSettleMs = 100;

let db: ChaosPostgres;
const servers: ChaosServer[] = [];

beforeAll(async () => {
  db = await startChaosPostgres();
});
afterAll(async () => {
  for (const server of servers) await killHard(server);
  await db?.destroy();
});

describe('SIGTERM under load', () => {
  it.each(['durable', 'queued'] as const)(
    '%s: stops accepting, finishes in-flight requests, exits 0 within SHUTDOWN_TIMEOUT_MS, every 202 stored',
    async (ack) => {
      const startedAt = Date.now();
      await db.query('TRUNCATE events');
      const server = await spawnBuiltServer(db.dsn, {
        API_KEYS: apiKey,
        INGEST_ACK: ack,
        INGEST_WORKERS: '2',
        SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs),
      });
      servers.push(server);
      await waitUntil('ready', async () => (await readyStatus(server.url)) === 200, {
        timeoutMs: 30_000,
      });
      const rssStart = rssMb(server.child.pid!);
      const log = new OutcomeLog();
      const load = startLoad({
        url: `${server.url}/events/bulk`,
        log,
        // Bulk-sized and many clients: in queued mode the queue is deep when the signal comes.
        clients: 12,
        eventsPerRequest: 100,
        maxRequests: 200_000,
        maxDurationMs: 120_000,
        requestTimeoutMs: 15_000,
        pauseMs: 1,
        headers: { 'x-api-key': apiKey },
      });
      const acked = () => log.count((r) => r.status === 202);
      let sigtermAt = 0;
      let exitMs = Infinity;
      let exit: number | string = 'still running';
      let rssAtSignal = 0;
      let unwrittenAtSignal = 0;
      try {
        await waitUntil('load to be acknowledged', () => acked() >= (long ? 20_000 : 1500), {
          timeoutMs: 60_000,
        });
        rssAtSignal = rssMb(server.child.pid!);
        const ackedEvents = log.ids('ok').size;
        sigtermAt = Date.now();
        server.child.kill('SIGTERM');
        // Acknowledged but not yet written when the signal came: what the drain must write.
        const [stored] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
        unwrittenAtSignal = Math.max(0, ackedEvents - stored!.n);
        exit = await Promise.race([
          server.exited,
          new Promise<string>((resolve) =>
            setTimeout(() => resolve('no exit'), shutdownTimeoutMs + 10_000),
          ),
        ]);
        exitMs = Date.now() - sigtermAt;
      } finally {
        load.stop();
        await load.done;
      }

      // Both are answered before enqueueing: definitely not stored.
      const refusedCodes = new Set(['shutting_down', 'queue_full']);
      const refused = new Set(
        log.records.filter((r) => refusedCodes.has(r.code ?? '')).flatMap((r) => r.ids),
      );
      const verdict = judge(log, await readStoredIds(db), refused);
      // Requests sent before the signal were taken: each gets its answer, a 202 or a retryable
      // 503 (shutting_down if its head was read only after the signal; queue_full in queued mode,
      // where clients outrun the writers). None is dropped unanswered.
      const takenButUnanswered = log.records
        .filter((r) => r.sentAt < sigtermAt)
        .filter((r) => !(r.status === 202 || (r.status === 503 && r.retryAfter !== null)))
        .map((r) => `${r.status} ${r.code ?? r.error}`);
      const acceptedAfterSignal = log.count(
        (r) => r.status === 202 && r.sentAt > sigtermAt + signalSettleMs,
      );
      const ackedAfterSignal = log.count((r) => r.status === 202 && r.answeredAt > sigtermAt);
      const leaks = linesLeakingSecrets(server.lines, secretsOf(db.dsn, [apiKey]));
      const failures = [
        // The server's own verdict says which part of the stop was not clean.
        ...(exit === 0
          ? []
          : [
              `exit ${exit}: ${server.lines.find((l) => l.includes('"stopped"')) ?? 'no stop logged'}`,
            ]),
        ...(exitMs <= shutdownTimeoutMs ? [] : [`exited ${exitMs} ms after SIGTERM`]),
        ...(takenButUnanswered.length > 0
          ? [`${takenButUnanswered.length} requests sent before SIGTERM not answered`]
          : []),
        ...(acceptedAfterSignal > 0
          ? [`${acceptedAfterSignal} requests accepted after SIGTERM`]
          : []),
        ...(leaks.length > 0 ? [`${leaks.length} log lines leak a secret`] : []),
      ];
      const figures = summarize(`sigterm-drain-${ack}`, startedAt, log, verdict, {
        recovery_ms: [exitMs],
        rss_mb: { start: rssStart, end: rssAtSignal, max: Math.max(rssStart, rssAtSignal) },
        extra: {
          ack,
          recovery_ms_meaning: ['SIGTERM → exit'],
          exit,
          shutdown_timeout_ms: shutdownTimeoutMs,
          acked_after_sigterm: ackedAfterSignal,
          acked_unwritten_at_sigterm_approx: unwrittenAtSignal,
          refused_shutting_down: log.count((r) => r.code === 'shutting_down'),
          refused_queue_full: log.count((r) => r.code === 'queue_full'),
          net_errors_after_sigterm: log.count((r) => r.status === 0 && r.sentAt >= sigtermAt),
        },
        failures,
      });
      writeScenarioResults(figures);

      expect(exit).toBe(0);
      expect(exitMs).toBeLessThanOrEqual(shutdownTimeoutMs);
      expect(takenButUnanswered).toEqual([]);
      expect(acceptedAfterSignal).toBe(0);
      expect(verdict.lostAcked).toEqual([]);
      expect(verdict.phantom).toEqual([]);
      expect(verdict.leakedRejected).toEqual([]);
      expect(verdict.duplicated).toEqual([]);
      expect(leaks).toEqual([]);
      expect(figures.pass).toBe(true);
    },
  );
});
