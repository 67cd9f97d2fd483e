// `npm run bench:dashboard`: the dashboard's first load on a 90-day view. Loads N synthetic events
// over 90 days (the metrics bench's dataset), absorbs them into the rollup, starts the BUILT server,
// then opens /dashboard?range=90d in Debian's chromium (a fresh browser context each run: nothing
// cached) and reports first paint, first contentful paint, the time until the totals and the chart
// are drawn, and the largest request (bytes on the wire and ms), medians of --runs.
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { createPool } from '../src/sql/create-pool.js';
import { launchChromium } from '../test/helpers/browser.js';
import { integer, parseBenchOptions } from './lib/bench-options.js';
import { startBenchDatabase, type BenchDatabase } from './lib/bench-database.js';
import { startBenchServer, type BenchServer } from './lib/bench-server.js';
import { readConditions } from './lib/conditions.js';
import { median } from './lib/median.js';
import { loadDataset } from './lib/metrics-dataset.js';
import { progress } from './lib/progress.js';
import { stopOnInterrupt } from './lib/stop-on-interrupt.js';
import { absorbEverything } from './metrics/run.js';
import { datasetShape } from './metrics/scenarios.js';

const usage = `npm run bench:dashboard -- [options]
  --events N   synthetic events over 90 days (10000000; use 1000000 while developing)
  --runs N     page loads, each in a fresh browser context; medians are reported (3)`;

const options = parseBenchOptions(
  process.argv.slice(2),
  { events: integer(10_000_000, 1000, 1_000_000_000), runs: integer(3, 1, 100) },
  usage,
  (values) => values,
);

/** The zone the page runs in, and so the zone of its buckets: an offset that is not UTC's. */
const browserZone = 'America/New_York';
const pageTimeoutMs = 120_000;

interface PageLoad {
  readonly firstPaintMs: number;
  readonly firstContentfulPaintMs: number;
  readonly drawnMs: number;
  readonly largest: { url: string; bytes: number; ms: number };
  /** The slowest of the view's /metrics requests, ms from its start to its last byte. */
  readonly slowestMetricsMs: number;
  readonly requests: number;
  readonly totalBytes: number;
}

async function main(): Promise<void> {
  const conditions = readConditions();
  const log = pino({ level: 'warn', base: { component: 'bench' } }, pino.destination(2));
  const shape = datasetShape(options.events);
  progress(
    `commit ${conditions.commit}${conditions.dirty ? ' (dirty)' : ''}, node ${conditions.node}, ${conditions.cores}× ${conditions.cpuModel}, load average ${conditions.loadAverageAtStart}`,
  );
  let database: BenchDatabase | undefined;
  let server: BenchServer | undefined;
  stopOnInterrupt(() => [server, database]);
  const loads: PageLoad[] = [];
  try {
    progress('starting embedded PostgreSQL');
    database = await startBenchDatabase(log);
    const dsn = await database.createFresh(`dashboard_${randomBytes(4).toString('hex')}`);
    progress(`generating ${shape.events.toLocaleString('en-US')} events over ${shape.days} days`);
    await loadDataset(dsn, shape, { projects: 0, eventsEach: 0 }, progress);
    const pool = createPool(
      {
        connectionString: dsn,
        applicationName: 'pulse-bench-refresh',
        max: 1,
        connectTimeoutMs: 5000,
        statementTimeoutMs: 3_600_000,
        queryTimeoutMs: 3_660_000,
      },
      log,
    );
    try {
      await absorbEverything(pool);
    } finally {
      await pool.end();
    }
    // Uncached and unlimited: every run pays for its /metrics answers, and three runs of three
    // requests stay far from any rate limit.
    server = await startBenchServer({
      dsn,
      env: { METRICS_CACHE_TTL_MS: '0', RATE_LIMIT_METRICS_PER_MIN: '0' },
      nodeArgs: [],
      startTimeoutMs: 120_000,
    });
    const browser = await launchChromium();
    try {
      for (let run = 1; run <= options.runs; run++) {
        loads.push(await loadOnce(browser, server.url));
        progress(`run ${run}: ${JSON.stringify(loads.at(-1))}`);
      }
    } finally {
      await browser.close();
    }
  } finally {
    await server?.stop();
    await database?.stop();
  }
  const med = (pick: (load: PageLoad) => number) => median(loads.map(pick)).toFixed(0);
  const largest = loads.map((l) => l.largest).sort((a, b) => b.bytes - a.bytes)[0]!;
  process.stdout.write(
    [
      `## Dashboard first load, ${shape.events.toLocaleString('en-US')} events over ${shape.days} days`,
      '',
      `Commit ${conditions.commit}${conditions.dirty ? ' (dirty)' : ''}, node ${conditions.node}, ${conditions.cores}× ${conditions.cpuModel}, load average ${conditions.loadAverageAtStart}; chromium headless, page zone ${browserZone}, /dashboard?range=90d (by day), METRICS_CACHE_TTL_MS=0; medians of ${loads.length}.`,
      '',
      '| first paint | first contentful paint | totals and chart drawn | largest request | its time | slowest /metrics | requests | bytes on the wire |',
      '| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |',
      `| ${med((l) => l.firstPaintMs)} ms | ${med((l) => l.firstContentfulPaintMs)} ms | ${med((l) => l.drawnMs)} ms | ${largest.url} (${largest.bytes.toLocaleString('en-US')} B) | ${med((l) => l.largest.ms)} ms | ${med((l) => l.slowestMetricsMs)} ms | ${med((l) => l.requests)} | ${Number(med((l) => l.totalBytes)).toLocaleString('en-US')} B |`,
      '',
    ].join('\n'),
  );
}

async function loadOnce(browser: Awaited<ReturnType<typeof launchChromium>>, url: string) {
  const context = await browser.newContext({ timezoneId: browserZone, locale: 'en-US' });
  try {
    const page = await context.newPage();
    const finished: { url: string; bytes: number; ms: number }[] = [];
    page.on('requestfinished', (request) => {
      void request.sizes().then((sizes) => {
        const timing = request.timing();
        finished.push({
          url: new URL(request.url()).pathname + new URL(request.url()).search,
          bytes: sizes.responseBodySize + sizes.responseHeadersSize,
          ms: timing.responseEnd,
        });
      });
    });
    await page.goto(`${url}/dashboard?range=90d`, { timeout: pageTimeoutMs });
    // No string evaluation: the page's CSP forbids eval, and a locator needs none.
    await page
      .locator('body[data-loaded="1"]')
      .waitFor({ state: 'attached', timeout: pageTimeoutMs });
    const paint = (name: string) =>
      page.evaluate((entry) => performance.getEntriesByName(entry)[0]?.startTime ?? NaN, name);
    const load: Omit<PageLoad, 'largest' | 'slowestMetricsMs' | 'requests' | 'totalBytes'> = {
      firstPaintMs: await paint('first-paint'),
      firstContentfulPaintMs: await paint('first-contentful-paint'),
      drawnMs: await paint('pulse:drawn'),
    };
    // requestfinished's sizes resolve a moment after the page is drawn.
    await page.waitForTimeout(500);
    const largest = finished.reduce((a, b) => (b.bytes > a.bytes ? b : a));
    return {
      ...load,
      largest,
      slowestMetricsMs: Math.max(
        ...finished.filter((r) => r.url.startsWith('/metrics?')).map((r) => r.ms),
      ),
      requests: finished.length,
      totalBytes: finished.reduce((sum, r) => sum + r.bytes, 0),
    };
  } finally {
    await context.close();
  }
}

await main();
