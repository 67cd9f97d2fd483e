// The ingest bench's runs: per run, the Postgres-only ceiling before and after and the HTTP-only
// ceiling, with every scenario measured in between (this machine drifts within minutes: only
// ratios within one run mean anything).
import type { Logger } from 'pino';
import { startBenchDatabase, type BenchDatabase } from '../lib/bench-database.js';
import { startBareUwsServer, type BenchServer } from '../lib/bench-server.js';
import { measureCommitLatency, type CommitLatency } from '../lib/commit-latency.js';
import { measurePostgresCeiling, type CeilingResult } from '../lib/postgres-ceiling.js';
import { progress } from '../lib/progress.js';
import { stopOnInterrupt } from '../lib/stop-on-interrupt.js';
import { uniqueEvents } from '../lib/unique-events.js';
import { driveIngest } from './drive-ingest.js';
import { keyHeaders, runLocalScenario, runUrlScenario } from './measure-scenario.js';
import type { IngestOptions } from './options.js';
import { fmtInt, fmtMs } from './report.js';
import type { RunResult, ScenarioRun } from './results.js';
import {
  ceilingBatchRows,
  ceilingConnections,
  ceilingMaxRowsPerSecond,
  type Scenario,
} from './scenarios.js';

export interface IngestBenchContext {
  readonly options: IngestOptions;
  readonly scenarios: readonly Scenario[];
  /** Unique across bench invocations too, so --url runs against a kept database never collide. */
  readonly runTag: string;
  readonly timestamp: number;
  readonly log: Logger;
}

export interface IngestBenchResult {
  readonly runs: RunResult[];
  /** undefined in --url mode (no Postgres of its own). */
  readonly postgresSettings: Readonly<Record<string, string>> | undefined;
}

export async function runIngestBench(context: IngestBenchContext): Promise<IngestBenchResult> {
  const { options, scenarios, runTag, timestamp, log } = context;
  let database: BenchDatabase | undefined;
  let currentServer: BenchServer | undefined;
  stopOnInterrupt(() => [currentServer, database]);

  const runs: RunResult[] = [];
  try {
    if (!options.url) {
      progress('starting embedded PostgreSQL');
      database = await startBenchDatabase(log);
    }
    let databaseCounter = 0;
    const freshDatabase = async () => {
      const name = `bench_${runTag}_${databaseCounter++}`;
      return { name, dsn: await database!.createFresh(name) };
    };
    const ceiling = async (
      run: number,
      when: string,
    ): Promise<{ ceiling: CeilingResult; commitLatency: CommitLatency }> => {
      const { name, dsn } = await freshDatabase();
      try {
        const commitLatency = await measureCommitLatency(dsn);
        progress(
          `run ${run}: one-row commit latency (${when}): p50 ${fmtMs(commitLatency.p50Ms)} ms, p99 ${fmtMs(commitLatency.p99Ms)} ms`,
        );
        progress(`run ${run}: Postgres-only ceiling (${when}), ${options.ceilingSeconds} s`);
        const result = await measurePostgresCeiling({
          dsn,
          seconds: options.ceilingSeconds,
          connections: ceilingConnections,
          batchRows: ceilingBatchRows,
          maxRowsPerSecond: ceilingMaxRowsPerSecond,
          idPrefix: `${runTag}-ceiling-${run}-${when}`,
          timestamp,
          postmasterPid: await database!.postmasterPid(),
          log,
        });
        progress(
          `run ${run}: ceiling ${when}: ${fmtInt(result.rowsPerSecond)} rows/s${result.exhausted ? ' (pre-built rows ran out: raise ceilingMaxRowsPerSecond)' : ''}`,
        );
        return { ceiling: result, commitLatency };
      } finally {
        await database!.drop(name);
      }
    };

    // Single events are bounded by HTTP and the load generator long before Postgres, so they get a
    // ceiling of their own: the same load generator and bodies against a server that only does
    // HTTP (reads each body, parses it, answers the 202). Once per run, beside the PG ceiling.
    const httpCeiling = async (run: number): Promise<number> => {
      progress(`run ${run}: HTTP-only ceiling (bare uWS), ${options.ceilingSeconds} s`);
      const bare = await startBareUwsServer({});
      currentServer = bare;
      try {
        const events = uniqueEvents({
          idPrefix: `${runTag}-http-ceiling-${run}`,
          eventName: 'bench',
          timestamp,
        });
        const result = await driveIngest(options.driver, {
          url: bare.url,
          path: '/events',
          connections: options.connections,
          durationSeconds: options.ceilingSeconds,
          events,
          eventsPerRequest: 1,
          // The same request bytes as the measured scenarios.
          headers: keyHeaders(options),
        });
        progress(`run ${run}: HTTP-only ceiling: ${fmtInt(result.requestsPerSecond)} req/s`);
        return result.requestsPerSecond;
      } finally {
        await bare.stop();
        currentServer = undefined;
      }
    };
    const measuresSingleEvents = scenarios.some(
      (s) => s.payload === 'single' && s.eventBytes === undefined,
    );

    for (let run = 1; run <= options.runs; run++) {
      const before = database ? await ceiling(run, 'before') : null;
      const httpCeilingRequestsPerSecond =
        database && measuresSingleEvents ? await httpCeiling(run) : null;
      const results: ScenarioRun[] = [];
      for (const scenario of scenarios) {
        const context = { options, run, runTag, timestamp, log };
        results.push(
          database
            ? await runLocalScenario(scenario, context, database, freshDatabase, (s) => {
                currentServer = s;
              })
            : await runUrlScenario(scenario, context),
        );
      }
      const after = database ? await ceiling(run, 'after') : null;
      const ceilingBefore = before?.ceiling ?? null;
      const ceilingAfter = after?.ceiling ?? null;
      const ceilingRowsPerSecond =
        ceilingBefore && ceilingAfter
          ? (ceilingBefore.rowsPerSecond + ceilingAfter.rowsPerSecond) / 2
          : null;
      const withRatios = results.map((r) => ({
        ...r,
        ceilingRatio:
          ceilingRowsPerSecond !== null && r.storedEventsPerSecond !== null
            ? r.storedEventsPerSecond / ceilingRowsPerSecond
            : null,
        httpCeilingRatio:
          httpCeilingRequestsPerSecond !== null &&
          r.storedEventsPerSecond !== null &&
          r.eventsPerRequest === 1
            ? r.storedEventsPerSecond / httpCeilingRequestsPerSecond
            : null,
      }));
      runs.push({
        run,
        ceilingBefore,
        ceilingAfter,
        ceilingRowsPerSecond,
        httpCeilingRequestsPerSecond,
        commitLatencyBefore: before?.commitLatency ?? null,
        commitLatencyAfter: after?.commitLatency ?? null,
        scenarios: withRatios,
      });
    }
  } finally {
    await currentServer?.stop();
    await database?.stop();
  }

  return { runs, postgresSettings: database?.settings };
}
