// One scenario of the ingest bench, measured: against a server this bench starts on a fresh
// database (rows counted, CPU and memory read from /proc), or against a running instance (--url).
import type { Logger } from 'pino';
import type { BenchDatabase } from '../lib/bench-database.js';
import { startBenchServer, type BenchServer } from '../lib/bench-server.js';
import { driveLoad } from '../lib/drive-load.js';
import { progress } from '../lib/progress.js';
import { readStatusKib } from '../lib/proc-stats.js';
import { readMetricsCount } from '../lib/read-metrics-count.js';
import { storeWriteKey } from '../lib/stored-write-key.js';
import { uniqueEvents } from '../lib/unique-events.js';
import { cpuCores, sampleCpu } from './cpu.js';
import { driveIngest } from './drive-ingest.js';
import type { IngestOptions } from './options.js';
import { fmtInt, fmtMib } from './report.js';
import type { ScenarioRun } from './results.js';
import { rssSampleIntervalMs, sampleEvents, scenarioShape, type Scenario } from './scenarios.js';

export interface ScenarioContext {
  readonly options: IngestOptions;
  readonly run: number;
  readonly runTag: string;
  readonly timestamp: number;
  readonly log: Logger;
}

export async function runLocalScenario(
  scenario: Scenario,
  context: ScenarioContext,
  database: BenchDatabase,
  freshDatabase: () => Promise<{ name: string; dsn: string }>,
  setCurrentServer: (server: BenchServer | undefined) => void,
): Promise<ScenarioRun> {
  const { options, run } = context;
  const { connections, eventsPerRequest, path, bodyOf } = scenarioShape(scenario, options);
  const label = `run ${run}/${options.runs} ${scenario.id}`;
  const { name, dsn } = await freshDatabase();
  const headers = options.writeKey
    ? { 'x-api-key': await storeWriteKey(dsn, context.log) }
    : keyHeaders(options);
  const serverEnv = { INGEST_ACK: scenario.ack ?? 'durable', ...options.serverEnv };
  const server = await startBenchServer({
    dsn,
    env: serverEnv,
    nodeArgs: options.serverNodeArgs,
    startTimeoutMs: 60_000,
  });
  setCurrentServer(server);
  try {
    const events = uniqueEvents({
      idPrefix: `${context.runTag}-${run}-${scenario.id}`,
      eventName: 'bench',
      timestamp: context.timestamp,
      eventBytes: scenario.eventBytes,
    });
    const bodyBytes = Buffer.byteLength(bodyOf(sampleEvents(context, scenario))());
    const load = { url: server.url, path, connections, headers, events, eventsPerRequest };

    if (options.warmupSeconds > 0) {
      progress(`${label}: warm-up ${options.warmupSeconds} s`);
      await driveIngest(options.driver, { ...load, durationSeconds: options.warmupSeconds });
    }
    const baseline = await settledCount(database, dsn);
    const baselineTransactions = await database.countInsertTransactions(dsn);

    const postmasterPid = await database.postmasterPid();
    const before = sampleCpu(server.pid, postmasterPid);
    const stopSampling = server.sampleRss(rssSampleIntervalMs);
    progress(
      `${label}: ${options.durationSeconds} s at c=${connections}, ${eventsPerRequest} event(s)/request, ${options.driver}`,
    );
    const result = await driveIngest(options.driver, {
      ...load,
      durationSeconds: options.durationSeconds,
      onTick: (seconds, responses) =>
        progress(
          `${label}: ${seconds}/${options.durationSeconds} s, ${fmtInt(responses)} responses, rss ${fmtMib((readStatusKib(server.pid, 'VmRSS') ?? 0) / 1024)} MB`,
        ),
    });
    const after = sampleCpu(server.pid, postmasterPid);
    stopSampling();

    const settled = await settledCount(database, dsn);
    const storedEvents = settled.count - baseline.count;
    const transactions = await database.countInsertTransactions(dsn);
    const meanRowsPerTransaction =
      transactions !== null && baselineTransactions !== null && transactions > baselineTransactions
        ? storedEvents / (transactions - baselineTransactions)
        : null;
    const vmHwmKib = readStatusKib(server.pid, 'VmHWM');
    const sampledPeakRssMib = server.peakSampledRssKib / 1024;
    const vmHwmMib = vmHwmKib === undefined ? null : vmHwmKib / 1024;
    const acknowledgedEvents = (result.statusCounts['202'] ?? 0) * eventsPerRequest;
    const stored = storedEvents / result.durationSeconds;
    progress(
      `${label}: ${fmtInt(result.requestsPerSecond)} req/s, ${fmtInt(stored)} stored events/s, p99 ${result.latencyP99Ms} ms, statuses ${JSON.stringify(result.statusCounts)}${result.errors ? `, ${result.errors} errors` : ''}`,
    );
    return {
      scenario: scenario.id,
      connections,
      eventsPerRequest,
      bodyBytes,
      serverEnv,
      load: result,
      storedEvents,
      storedEventsPerSecond: stored,
      storedUnavailableReason: null,
      acknowledgedEvents,
      meanRowsPerTransaction,
      settleSeconds: settled.seconds,
      ceilingRatio: null,
      httpCeilingRatio: null,
      // VmHWM is the kernel's own high-water mark; the samples are a cross-check of it.
      peakRssMib: Math.max(vmHwmMib ?? 0, sampledPeakRssMib),
      vmHwmMib,
      sampledPeakRssMib,
      cpuCores: cpuCores(
        before,
        after,
        server.pid,
        result.durationSeconds,
        result.generatorCpuSeconds,
      ),
      serverProblems: [...server.problems],
    };
  } finally {
    await server.stop();
    setCurrentServer(undefined);
    await database.drop(name);
  }
}

export async function runUrlScenario(
  scenario: Scenario,
  context: ScenarioContext,
): Promise<ScenarioRun> {
  const { options, run } = context;
  const baseUrl = options.url!;
  const { connections, eventsPerRequest, path, bodyOf } = scenarioShape(scenario, options);
  const label = `run ${run}/${options.runs} ${scenario.id}`;
  const headers = keyHeaders(options);
  // Its own event_name per scenario and run: /metrics then counts exactly this load's events,
  // whatever else the instance holds. The warm-up uses another name.
  const eventName = `bench-${context.runTag}-${run}-${scenario.id}`;
  const load = { url: baseUrl, path, connections, headers };
  const bodyBytes = Buffer.byteLength(bodyOf(sampleEvents(context, scenario))());
  if (options.warmupSeconds > 0) {
    progress(`${label}: warm-up ${options.warmupSeconds} s`);
    const warm = uniqueEvents({
      idPrefix: `${context.runTag}-${run}-${scenario.id}-warm`,
      eventName: `${eventName}-warmup`,
      timestamp: context.timestamp,
    });
    await driveLoad({ ...load, durationSeconds: options.warmupSeconds, nextBody: bodyOf(warm) });
  }
  const events = uniqueEvents({
    idPrefix: `${context.runTag}-${run}-${scenario.id}`,
    eventName,
    timestamp: context.timestamp,
  });
  progress(`${label}: ${options.durationSeconds} s at c=${connections} against ${baseUrl}`);
  const result = await driveLoad({
    ...load,
    nextBody: bodyOf(events),
    durationSeconds: options.durationSeconds,
    onTick: (seconds, responses) =>
      progress(`${label}: ${seconds}/${options.durationSeconds} s, ${fmtInt(responses)} responses`),
  });
  const count = await readMetricsCount({
    baseUrl,
    headers,
    eventName,
    fromSeconds: context.timestamp,
    toSeconds: context.timestamp,
  });
  const stored = count.ok ? count.count / result.durationSeconds : null;
  progress(
    `${label}: ${fmtInt(result.requestsPerSecond)} req/s, stored ${count.ok ? `${fmtInt(stored!)} events/s` : `unavailable (${count.reason})`}, p99 ${result.latencyP99Ms} ms`,
  );
  return {
    scenario: scenario.id,
    connections,
    eventsPerRequest,
    bodyBytes,
    serverEnv: {},
    load: result,
    storedEvents: count.ok ? count.count : null,
    storedEventsPerSecond: stored,
    storedUnavailableReason: count.ok ? null : count.reason,
    acknowledgedEvents: (result.statusCounts['202'] ?? 0) * eventsPerRequest,
    meanRowsPerTransaction: null,
    settleSeconds: null,
    ceilingRatio: null,
    httpCeilingRatio: null,
    peakRssMib: null,
    vmHwmMib: null,
    sampledPeakRssMib: null,
    cpuCores: null,
    serverProblems: [],
  };
}

/** The --api-key every request carries, as a client holding it would send it. With --write-key
 *  the key is made per database; the HTTP-only ceiling sends one of the same length. */
export function keyHeaders(options: IngestOptions): Record<string, string> {
  if (options.writeKey) return { 'x-api-key': `pk_w_${'x'.repeat(32)}` };
  return options.apiKey ? { 'x-api-key': options.apiKey } : {};
}

/** Polls the row count until it has not grown for 1 s (queued mode keeps writing after the load
 *  stops; durable mode settles at once), at most 60 s. */
async function settledCount(
  database: BenchDatabase,
  dsn: string,
): Promise<{ count: number; seconds: number }> {
  const startedAt = performance.now();
  let count = await database.countEvents(dsn);
  let stableSince = performance.now();
  while (performance.now() - startedAt < 60_000) {
    await sleep(250);
    const next = await database.countEvents(dsn);
    if (next !== count) {
      count = next;
      stableSince = performance.now();
    } else if (performance.now() - stableSince >= 1000) break;
  }
  return { count, seconds: (stableSince - startedAt) / 1000 };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
