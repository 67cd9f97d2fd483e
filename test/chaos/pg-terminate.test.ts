// pg_terminate_backend of the server's own connections every 2 s under load, in three rounds: idle
// connections only, active ones only, then all (docs/RELIABILITY.md, scenario 3). The process survives
// (an unhandled 'error' in any thread would kill it), nothing acknowledged is lost, and losing an
// idle connection costs no request at all: the pool discards it and the insert goes again on a
// fresh one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { judge, OutcomeLog, readStoredIds, startLoad, type LoadRun } from '../helpers/load.js';
import { sleep, waitUntil } from '../helpers/wait-until.js';
import { startChaosPostgres, type ChaosPostgres } from './lib/chaos-postgres.js';
import { rssMb, summarize, writeScenarioResults } from './lib/scenario-results.js';
import { linesLeakingSecrets, secretsOf } from './lib/secret-leaks.js';
import { stopServer } from './lib/server-probes.js';
import { readyStatus, spawnBuiltServer, type ChaosServer } from './lib/server-process.js';

const apiKey = 'chaos-terminate-key-1e6a9f3b7c20';
const long = process.env.CHAOS_LONG === '1';
const roundsPerFlavour = long ? 15 : 3;
const everyMs = 2000;

type Flavour = 'idle' | 'active' | 'all';
const flavours: readonly Flavour[] = ['idle', 'active', 'all'];
const stateFilter: Record<Flavour, string> = {
  idle: "AND state = 'idle'",
  active: "AND state = 'active'",
  all: '',
};

let db: ChaosPostgres;
let server: ChaosServer;
let serverPid: number;
const log = new OutcomeLog();
let load: LoadRun;

beforeAll(async () => {
  db = await startChaosPostgres();
  server = await spawnBuiltServer(db.dsn, { API_KEYS: apiKey, INGEST_WORKERS: '2' });
  serverPid = server.child.pid!;
  await waitUntil('the server to be ready', async () => (await readyStatus(server.url)) === 200, {
    timeoutMs: 30_000,
  });
});
afterAll(async () => {
  load?.stop();
  await load?.done;
  if (server) await stopServer(server);
  await db?.destroy();
});

/** Terminates the server's backends in that state; returns them by state at the time. An
 *  'active' round retries briefly: an insert is on the wire for milliseconds at a time. */
async function terminate(flavour: Flavour): Promise<{ idle: number; active: number }> {
  for (let attempt = 0; ; attempt++) {
    const rows = await db.query<{ state: string; done: boolean }>(
      `SELECT state, pg_terminate_backend(pid) AS done FROM pg_stat_activity
       WHERE application_name ~ ('^pulse-[a-z]+-' || $1::text || '($|:)') ${stateFilter[flavour]}`,
      [String(serverPid)],
    );
    const killed = rows.filter((r) => r.done);
    if (killed.length > 0 || flavour !== 'active' || attempt >= 200)
      return {
        idle: killed.filter((r) => r.state !== 'active').length,
        active: killed.filter((r) => r.state === 'active').length,
      };
    await sleep(5);
  }
}

describe('pg_terminate_backend of the server’s connections under load', () => {
  it('survives idle-only, active-only and all rounds; idle-only costs no request; nothing acknowledged is lost', async () => {
    const startedAt = Date.now();
    const rss = [rssMb(serverPid)];
    load = startLoad({
      url: `${server.url}/events/bulk`,
      log,
      clients: 6,
      eventsPerRequest: 20,
      maxRequests: 500_000,
      maxDurationMs: 600_000,
      requestTimeoutMs: 15_000,
      pauseMs: 2,
      headers: { 'x-api-key': apiKey },
    });
    await waitUntil('load to be acknowledged', () => log.count((r) => r.status === 202) >= 200, {
      timeoutMs: 30_000,
    });
    const phases: Record<
      string,
      { terminated_idle: number; terminated_active: number; requests: number; not_202: number }
    > = {};
    const failedByFlavour = {} as Record<Flavour, string[]>;
    for (const flavour of flavours) {
      const first = log.records.length;
      let idle = 0;
      let active = 0;
      for (let round = 0; round < roundsPerFlavour; round++) {
        await sleep(everyMs);
        const killed = await terminate(flavour);
        idle += killed.idle;
        active += killed.active;
        rss.push(rssMb(serverPid));
      }
      // Requests in flight during the last round are answered by then (the deadline is 8 s,
      // a rerun takes milliseconds).
      await sleep(1000);
      const records = log.records.slice(first);
      failedByFlavour[flavour] = records
        .filter((r) => r.status !== 202)
        .map((r) => `${r.status} ${r.code ?? r.error}`);
      phases[flavour] = {
        terminated_idle: idle,
        terminated_active: active,
        requests: records.length,
        not_202: failedByFlavour[flavour].length,
      };
    }
    load.stop();
    await load.done;

    const verdict = judge(log, await readStoredIds(db));
    const alive = server.child.exitCode === null && server.child.signalCode === null;
    const notRetryable = log.records
      .filter((r) => r.status !== 202 && !(r.status === 503 && r.retryAfter !== null))
      .map((r) => `${r.status} ${r.code ?? r.error}`);
    const leaks = linesLeakingSecrets(server.lines, secretsOf(db.dsn, [apiKey]));
    const failures = [
      ...(alive ? [] : ['the server process died']),
      ...(failedByFlavour.idle.length > 0
        ? [`${failedByFlavour.idle.length} failed requests in idle-only rounds`]
        : []),
      ...flavours
        .filter((f) => phases[f]!.not_202 > phases[f]!.terminated_active)
        .map((f) => `${f}: more failed requests than active backends terminated`),
      ...(notRetryable.length > 0 ? [`${notRetryable.length} answers not 202/503`] : []),
      ...(leaks.length > 0 ? [`${leaks.length} log lines leak a secret`] : []),
    ];
    const figures = summarize('pg-terminate', startedAt, log, verdict, {
      rss_mb: { start: rss[0]!, end: rss.at(-1)!, max: Math.max(...rss) },
      extra: {
        every_ms: everyMs,
        rounds_per_flavour: roundsPerFlavour,
        phases,
        server_alive: alive,
        pool_errors_logged: server.lines.filter((l) => l.includes('idle postgres connection lost'))
          .length,
      },
      failures,
    });
    writeScenarioResults(figures);

    expect(alive).toBe(true);
    expect(phases.idle!.terminated_idle).toBeGreaterThan(0);
    expect(phases.active!.terminated_active).toBeGreaterThan(0);
    expect(failedByFlavour.idle).toEqual([]);
    for (const f of flavours)
      expect(phases[f]!.not_202).toBeLessThanOrEqual(phases[f]!.terminated_active);
    expect(notRetryable).toEqual([]);
    expect(verdict.lostAcked).toEqual([]);
    expect(verdict.phantom).toEqual([]);
    expect(verdict.duplicated).toEqual([]);
    expect(leaks).toEqual([]);
    expect(figures.pass).toBe(true);
  });
});
