// kill -9 of the server under sustained load, twice, each time restarted 500 ms later on the same
// port (a supervisor's stand-in): nothing acknowledged is lost, the new process is ready within
// 5 s, and the killed process leaves no backend behind (docs/RELIABILITY.md, scenario 1). Run without and
// with client retries, and once with the 'ack-before-commit' fault, which must be caught.
import { freePort } from '../../src/embedded/embedded-postgres.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faultInjectionEnv } from '../helpers/fault-injection.js';
import { judge, OutcomeLog, readStoredIds, startLoad, type LoadRun } from '../helpers/load.js';
import { sleep, waitUntil } from '../helpers/wait-until.js';
import { startChaosPostgres, type ChaosPostgres } from './lib/chaos-postgres.js';
import { startRetryingLoad } from './lib/retrying-load.js';
import { rssMb, summarize, writeScenarioResults } from './lib/scenario-results.js';
import { linesLeakingSecrets, secretsOf, sendSecretBearingRequests } from './lib/secret-leaks.js';
import { stopServer } from './lib/server-probes.js';
import { killHard, readyStatus, spawnBuiltServer, type ChaosServer } from './lib/server-process.js';

const apiKey = 'chaos-kill9-key-4d1f8b2e9a7c';
const long = process.env.CHAOS_LONG === '1';
/** Acknowledged requests to wait for before each kill: the load is in every stage by then. */
const acksBeforeKill = long ? 4000 : 400;
const kills = 2;
/** What the scenario promises. */
const readyWithinMs = 5000;
const restartDelayMs = 500;
const backendsGoneWithinMs = 5000;

let db: ChaosPostgres;
const servers: ChaosServer[] = [];

beforeAll(async () => {
  db = await startChaosPostgres();
});
afterAll(async () => {
  for (const server of servers) await killHard(server);
  await db?.destroy();
});

/** Events accepted and not yet committed, from the server's Prometheus exposition. */
async function queueDepth(url: string): Promise<number> {
  const res = await fetch(`${url}/internal/metrics`, {
    headers: { 'x-api-key': apiKey },
    signal: AbortSignal.timeout(2000),
  });
  const line = (await res.text())
    .split('\n')
    .find((l) => l.startsWith('pulse_queue_depth_events '));
  return Number(line?.split(' ')[1] ?? 0);
}

interface KillRound {
  readonly killedPid: number;
  readonly readyMs: number;
  readonly backendsGoneMs: number;
  readonly firstAckAfterKillMs: number;
}

async function runKills(
  scenario: string,
  mode: { readonly retries: boolean; readonly faults?: string },
) {
  const startedAt = Date.now();
  await db.query('TRUNCATE events');
  const port = await freePort();
  const env: Record<string, string> = {
    API_KEYS: apiKey,
    INGEST_WORKERS: '2',
    ...(mode.faults ? faultInjectionEnv(mode.faults) : {}),
  };
  const spawn = async () => {
    const server = await spawnBuiltServer(db.dsn, env, { port });
    servers.push(server);
    return server;
  };
  let server = await spawn();
  await waitUntil(
    'the first server to be ready',
    async () => (await readyStatus(server.url)) === 200,
    {
      timeoutMs: 30_000,
    },
  );
  const secretProbeStatuses = await sendSecretBearingRequests(server.url, apiKey);
  const rssStart = rssMb(server.child.pid!);
  let rssMax = rssStart;
  const log = new OutcomeLog();
  const loadOptions = {
    url: `${server.url}/events/bulk`,
    log,
    // The negative control needs a deep queue at the kill: its clients are not held back by
    // commits, and only acknowledged-but-unwritten events can be lost.
    clients: mode.faults ? 16 : 6,
    eventsPerRequest: mode.faults ? 100 : 20,
    maxRequests: 200_000,
    maxDurationMs: long ? 300_000 : 60_000,
    requestTimeoutMs: 10_000,
    pauseMs: 2,
    headers: { 'x-api-key': apiKey },
  };
  const load: LoadRun = mode.retries
    ? startRetryingLoad({ ...loadOptions, maxAttempts: 12, maxBackoffMs: 1000 })
    : startLoad(loadOptions);
  const acked = () => log.count((r) => r.status === 202);
  const rounds: KillRound[] = [];
  try {
    for (let k = 0; k < kills; k++) {
      const ackedBefore = acked();
      await waitUntil(
        `${acksBeforeKill} acknowledged requests`,
        () => acked() - ackedBefore >= acksBeforeKill,
        {
          timeoutMs: 60_000,
        },
      );
      if (mode.faults) {
        const { url } = server;
        await waitUntil(
          'acknowledged events waiting in the queue',
          async () => (await queueDepth(url)) >= 1000,
          {
            timeoutMs: 30_000,
            intervalMs: 10,
          },
        );
      }
      rssMax = Math.max(rssMax, rssMb(server.child.pid!));
      const killedPid = server.child.pid!;
      const killedAt = Date.now();
      await killHard(server);
      await sleep(restartDelayMs);
      const spawnedAt = Date.now();
      server = await spawn();
      await waitUntil(
        'the restarted server to be ready',
        async () => (await readyStatus(server.url)) === 200,
        {
          timeoutMs: 30_000,
          intervalMs: 25,
        },
      );
      const readyMs = Date.now() - spawnedAt;
      await waitUntil(
        'no backend of the killed process',
        async () => (await db.connectionsOf(killedPid)) === 0,
        {
          timeoutMs: 30_000,
          intervalMs: 25,
        },
      );
      const backendsGoneMs = Date.now() - killedAt;
      const firstAck = await waitUntil(
        'a 202 from the restarted server',
        () => log.records.find((r) => r.status === 202 && r.sentAt >= spawnedAt),
        { timeoutMs: 30_000 },
      );
      rounds.push({
        killedPid,
        readyMs,
        backendsGoneMs,
        firstAckAfterKillMs: firstAck.answeredAt - killedAt,
      });
    }
    const ackedAfterLastRestart = acked();
    await waitUntil(
      'acknowledgements after the last restart',
      () => acked() - ackedAfterLastRestart >= 50,
      {
        timeoutMs: 30_000,
      },
    );
  } finally {
    load.stop();
    await load.done;
  }
  const rssEnd = rssMb(server.child.pid!);
  await stopServer(server);
  const verdict = judge(log, await readStoredIds(db));
  const leaks = servers.flatMap((s) => linesLeakingSecrets(s.lines, secretsOf(db.dsn, [apiKey])));
  const ackedIds = log.ids('ok');
  const unacked = mode.retries
    ? [...new Set(log.records.flatMap((r) => r.ids))].filter((id) => !ackedIds.has(id))
    : [];
  const failures = [
    ...rounds.filter((r) => r.readyMs > readyWithinMs).map((r) => `ready after ${r.readyMs} ms`),
    ...rounds
      .filter((r) => r.backendsGoneMs > backendsGoneWithinMs)
      .map((r) => `backends of ${r.killedPid} left for ${r.backendsGoneMs} ms`),
    ...(unacked.length > 0 ? [`${unacked.length} events never acknowledged despite retries`] : []),
    ...(leaks.length > 0 ? [`${leaks.length} log lines leak a secret`] : []),
    ...(secretProbeStatuses.join() === '401,400,401,401'
      ? []
      : [`secret-bearing requests answered ${secretProbeStatuses.join()}`]),
  ];
  const figures = summarize(scenario, startedAt, log, verdict, {
    recovery_ms: rounds.map((r) => r.firstAckAfterKillMs),
    rss_mb: { start: rssStart, end: rssEnd, max: Math.max(rssMax, rssEnd) },
    extra: {
      kills,
      restart_delay_ms: restartDelayMs,
      retries: mode.retries,
      faults: mode.faults ?? null,
      ready_ms: rounds.map((r) => r.readyMs),
      killed_backends_gone_ms: rounds.map((r) => r.backendsGoneMs),
      events_never_acked: unacked.length,
      secret_probe_statuses: secretProbeStatuses,
    },
    failures,
  });
  writeScenarioResults(figures);
  return { figures, verdict, rounds, leaks, unacked, log, secretProbeStatuses };
}

describe('kill -9 of the server under load', () => {
  it('loses nothing acknowledged, is ready again within 5 s and leaves no backend behind (no client retries)', async () => {
    const { figures, verdict, rounds, leaks, log, secretProbeStatuses } = await runKills(
      'kill9-server',
      { retries: false },
    );
    expect(verdict.lostAcked).toEqual([]);
    expect(verdict.phantom).toEqual([]);
    expect(verdict.duplicated).toEqual([]);
    for (const round of rounds) {
      expect(round.readyMs).toBeLessThanOrEqual(readyWithinMs);
      expect(round.backendsGoneMs).toBeLessThanOrEqual(backendsGoneWithinMs);
    }
    // Only 202s and network errors (requests the dead process held): nothing else is expected.
    expect(
      log.records
        .filter((r) => r.status !== 202 && r.status !== 0)
        .map((r) => `${r.status} ${r.code}`),
    ).toEqual([]);
    expect(secretProbeStatuses).toEqual([401, 400, 401, 401]);
    expect(leaks).toEqual([]);
    // The grep itself can fail: a line carrying the DSN or the key is caught.
    const secrets = secretsOf(db.dsn, [apiKey]);
    expect(linesLeakingSecrets([`connecting to ${db.dsn}`, `key=${apiKey}`], secrets)).toHaveLength(
      2,
    );
    expect(figures.pass).toBe(true);
  });

  it('with client retries (same ids), every event ends up stored exactly once', async () => {
    const { figures, verdict, rounds, leaks, unacked } = await runKills('kill9-server-retries', {
      retries: true,
    });
    expect(verdict.lostAcked).toEqual([]);
    expect(verdict.phantom).toEqual([]);
    expect(verdict.duplicated).toEqual([]);
    expect(unacked).toEqual([]);
    for (const round of rounds) {
      expect(round.readyMs).toBeLessThanOrEqual(readyWithinMs);
      expect(round.backendsGoneMs).toBeLessThanOrEqual(backendsGoneWithinMs);
    }
    expect(leaks).toEqual([]);
    expect(figures.pass).toBe(true);
  });

  it('NEGATIVE CONTROL: with FAULT_INJECTION=ack-before-commit the same scenario reports lost events', async () => {
    const { verdict } = await runKills('kill9-server-ack-before-commit', {
      retries: false,
      faults: 'ack-before-commit',
    });
    expect(verdict.lostAcked.length).toBeGreaterThan(0);
  });
});
