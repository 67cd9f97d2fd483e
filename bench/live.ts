// `npm run bench:live`: bulk ingest at c=50 (the bench:ingest load driver and server launcher)
// against the BUILT server, alternating runs without and with /live subscribers (N on metrics, M
// on events, all on the load's project), each on a fresh database. Reports the in-run throughput
// ratio, the p99 from a probe's ack to its event and to the totals that count it, and peak RSS.
import { randomBytes, randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { createProjectWithKeys } from '../test/helpers/admin-api.js';
import { integer, parseBenchOptions } from './lib/bench-options.js';
import { startBenchDatabase } from './lib/bench-database.js';
import { startBenchServer } from './lib/bench-server.js';
import { readConditions } from './lib/conditions.js';
import { driveLoad } from './lib/drive-load.js';
import { median } from './lib/median.js';
import { progress } from './lib/progress.js';
import { uniqueEvents } from './lib/unique-events.js';
import {
  openSubscribers,
  postProbes,
  probeLatencies,
  type Subscribers,
} from './live/subscribers.js';

const usage = `npm run bench:live -- [options]
  --runs N                 pairs of runs (without, with subscribers); medians reported (3)
  --duration S             seconds of bulk load per run (10)
  --connections N          concurrent ingest connections (50)
  --batch N                events per bulk request (100)
  --metrics-subscribers N  /live clients on the metrics stream (1000)
  --events-subscribers N   /live clients on the events stream (100)`;

const options = parseBenchOptions(
  process.argv.slice(2),
  {
    runs: integer(3, 1, 20),
    duration: integer(10, 1, 600),
    connections: integer(50, 1, 1000),
    batch: integer(100, 1, 10_000),
    'metrics-subscribers': integer(1000, 0, 100_000),
    'events-subscribers': integer(100, 0, 100_000),
  },
  usage,
  (v) => v,
);

interface LiveRun {
  readonly subscribers: boolean;
  readonly storedPerSecond: number;
  readonly non202: number;
  readonly peakRssMb: number;
  readonly eventP99Ms: number | null;
  readonly metricsP99Ms: number | null;
  readonly probes: number;
  readonly probesMissing: number;
  readonly received: Record<string, number>;
}

const p99 = (values: readonly number[]) =>
  values.length === 0
    ? null
    : [...values].sort((a, b) => a - b)[Math.ceil(values.length * 0.99) - 1]!;

async function main(): Promise<void> {
  const conditions = readConditions();
  const log = pino({ level: 'warn' }, pino.destination(2));
  const root = `bench-root-${randomUUID()}`;
  const runTag = randomBytes(4).toString('hex');
  progress(
    `commit ${conditions.commit}${conditions.dirty ? ' (dirty)' : ''}, node ${conditions.node}, ${conditions.cores}× ${conditions.cpuModel}, load ${conditions.loadAverageAtStart}`,
  );
  const database = await startBenchDatabase(log);
  const runs: LiveRun[] = [];
  try {
    for (let run = 1; run <= options.runs; run++)
      for (const withSubscribers of [false, true])
        runs.push(await measure(run, withSubscribers, database, root, runTag));
  } finally {
    await database.stop();
  }
  report(runs, conditions);
}

async function measure(
  run: number,
  withSubscribers: boolean,
  database: Awaited<ReturnType<typeof startBenchDatabase>>,
  root: string,
  runTag: string,
): Promise<LiveRun> {
  const name = `pulse_bench_live_${runTag}_${run}_${withSubscribers ? 'with' : 'without'}`;
  const dsn = await database.createFresh(name);
  const server = await startBenchServer({
    dsn,
    env: { API_KEYS: root, LIVE_MAX_CLIENTS: '1000000', AUTH_FAILURES_PER_MIN: '0' },
    nodeArgs: [],
    startTimeoutMs: 60_000,
  });
  let subscribers: Subscribers | undefined;
  try {
    const probe = await createProjectWithKeys(server.url, root, 'probe');
    const counts = {
      metrics: withSubscribers ? options['metrics-subscribers'] : 0,
      events: withSubscribers ? options['events-subscribers'] : 0,
    };
    if (withSubscribers) {
      progress(
        `run ${run}: opening ${counts.metrics} metrics and ${counts.events} events subscribers`,
      );
      subscribers = await openSubscribers(server.url, counts, root, probe.read);
    }
    const events = uniqueEvents({
      idPrefix: `${runTag}-${run}-${withSubscribers ? 'w' : 'o'}`,
      eventName: 'bench',
      timestamp: Math.floor(Date.now() / 1000) - 60,
    });
    progress(
      `run ${run} ${withSubscribers ? 'with' : 'without'} subscribers: ${options.duration} s of bulk load`,
    );
    const stopRss = server.sampleRss(200);
    const probes = postProbes(server.url, probe.write, 100);
    const load = await driveLoad({
      url: server.url,
      path: '/events/bulk',
      connections: options.connections,
      durationSeconds: options.duration,
      nextBody: () => events.nextBulkBody(options.batch),
      headers: { 'x-api-key': root },
    });
    await probes.stop();
    // The last probes' messages are still on their way.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    stopRss();
    const accepted = load.statusCounts['202'] ?? 0;
    const latencies = subscribers ? probeLatencies(probes.acks, subscribers) : null;
    const result: LiveRun = {
      subscribers: withSubscribers,
      storedPerSecond: (accepted * options.batch) / load.durationSeconds,
      non202: load.responses - accepted,
      peakRssMb: Math.round(server.peakSampledRssKib / 1024),
      eventP99Ms: latencies ? p99(latencies.events) : null,
      metricsP99Ms: latencies ? p99(latencies.metrics) : null,
      probes: probes.acks.length,
      probesMissing: latencies?.missing ?? 0,
      received: { ...(subscribers?.received ?? {}) },
    };
    progress(JSON.stringify(result));
    return result;
  } finally {
    await subscribers?.close();
    await server.stop();
    await database.drop(name);
  }
}

function report(runs: readonly LiveRun[], conditions: ReturnType<typeof readConditions>): void {
  const arm = (withSubscribers: boolean) => runs.filter((r) => r.subscribers === withSubscribers);
  const med = (values: (number | null)[]) => {
    const known = values.filter((v): v is number => v !== null);
    return known.length === 0 ? null : median(known);
  };
  const without = med(arm(false).map((r) => r.storedPerSecond))!;
  const withSubs = med(arm(true).map((r) => r.storedPerSecond))!;
  const lines = [
    `commit ${conditions.commit}, node ${conditions.node}, ${conditions.cores}× ${conditions.cpuModel}`,
    `${options.runs} pair(s), ${options.duration} s bulk at c=${options.connections}, batch ${options.batch}; ` +
      `${options['metrics-subscribers']} metrics + ${options['events-subscribers']} events subscribers; probes every 100 ms`,
    '',
    '| run | subscribers | stored events/s | non-202 | peak RSS MB | probe → event p99 ms | probe → totals p99 ms | probes (missing) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...runs.map(
      (r, i) =>
        `| ${Math.floor(i / 2) + 1} | ${r.subscribers ? 'yes' : 'no'} | ${Math.round(r.storedPerSecond)} | ${r.non202} | ${r.peakRssMb} | ${r.eventP99Ms?.toFixed(0) ?? '—'} | ${r.metricsP99Ms?.toFixed(0) ?? '—'} | ${r.subscribers ? `${r.probes} (${r.probesMissing})` : r.probes} |`,
    ),
    '',
    `medians: ${Math.round(without)} stored events/s without, ${Math.round(withSubs)} with: ratio ${(withSubs / without).toFixed(3)} (target ≥ 0.80); ` +
      `p99 probe → event ${med(arm(true).map((r) => r.eventP99Ms))?.toFixed(0)} ms, → totals ${med(arm(true).map((r) => r.metricsP99Ms))?.toFixed(0)} ms (target ≤ 1500); ` +
      `peak RSS ${med(arm(false).map((r) => r.peakRssMb))} MB without, ${med(arm(true).map((r) => r.peakRssMb))} MB with`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
