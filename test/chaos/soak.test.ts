// Scenario 10 of docs/RELIABILITY.md: half of saturation for SOAK_SECONDS (180 in `npm test`,
// 600 in `npm run test:chaos`) with GET /metrics mixed in. Nothing may grow: RSS (least-squares
// slope after warm-up), latency (p99 of the last minute against the first minute after warm-up),
// Postgres connections, /metrics cache keys. And nothing may fail: every request answered 2xx.
//
// Windows: warm-up is the first 120 s of a 600 s soak (so the reference is "minute 3") and 60 s
// of a 180 s one (the reference is then minute 2, the first full minute after warm-up; "minute 3"
// would be the last minute itself). Shorter development runs (SOAK_SECONDS=60) scale both down to
// thirds.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { judge, OutcomeLog, readStoredIds, sendBulk, startLoad } from '../helpers/load.js';
import { sleep } from '../helpers/wait-until.js';
import { startChaosPostgres, type ChaosPostgres } from './lib/chaos-postgres.js';
import { percentile, rssMb, summarize, writeScenarioResults } from './lib/scenario-results.js';
import { spawnBuiltServer, type ChaosServer } from './lib/server-process.js';
import { connectionsByApplication, readGauge, stopServer, total } from './lib/server-probes.js';

/** `npm run test:chaos`: the latency-trend and RSS-slope criteria are asserted too. */
const strict = process.env.CHAOS_LONG === '1';
const soakSeconds = Number(process.env.SOAK_SECONDS ?? 180);
const warmupSeconds = soakSeconds >= 600 ? 120 : Math.min(60, soakSeconds / 3);
const windowSeconds = Math.min(60, (soakSeconds - warmupSeconds) / 2);
const eventsPerRequest = 50;
const metricsQueriesPerSecond = 5;
/** Distinct /metrics query strings: the cache may hold at most this many keys. */
const distinctMetricsQueries = 50;
const sampleEveryMs = 2000;
/** What the RSS floor may rise after warm-up in a short run (see the assertion). */
const maxShortRunRssRiseMb = 32;
/** Windows whose RSS minimum is the floor the leak check fits (10 samples each). */
const rssFloorWindowMs = 20_000;
/** Open-loop pacing, bounded: beyond this many unanswered requests the sender skips (reported). */
const maxOutstanding = 64;
/** INGEST_WORKERS × PG_POOL_SIZE_PER_WORKER + METRICS_POOL_SIZE + EXPORT_POOL_SIZE + 2 admin + 1
 *  access listener, at their defaults. */
const connectionBudget = 2 * 1 + 4 + 2 + 3;

let db: ChaosPostgres;
let server: ChaosServer;

beforeAll(async () => {
  db = await startChaosPostgres();
  // /metrics rate limiting off: the soak's own 5 req/s would otherwise be 429s by design.
  server = await spawnBuiltServer(db.dsn, { RATE_LIMIT_METRICS_PER_MIN: '0' });
});
afterAll(async () => {
  if (server) await stopServer(server);
  await db?.destroy();
});

function slopePerMinute(points: readonly { t: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const meanT = points.reduce((a, p) => a + p.t, 0) / n;
  const meanY = points.reduce((a, p) => a + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - meanT) * (p.y - meanY);
    den += (p.t - meanT) ** 2;
  }
  return (num / den) * 60_000; // t in ms
}

/** RSS between collections is a sawtooth several MB tall; a leak raises the floor it returns to.
 *  The minimum of each window, at the window's middle: the floor, sampled. */
function floorPerWindow(
  points: readonly { t: number; y: number }[],
  windowMs: number,
): { t: number; y: number }[] {
  const floors = new Map<number, number>();
  for (const p of points) {
    const w = Math.floor(p.t / windowMs);
    floors.set(w, Math.min(floors.get(w) ?? Infinity, p.y));
  }
  return [...floors].map(([w, y]) => ({ t: (w + 0.5) * windowMs, y }));
}

/** Saturation: events/s stored by a closed loop of 8 clients sending bulks back to back. */
async function measureSaturation(url: string, log: OutcomeLog): Promise<number> {
  const started = Date.now();
  const run = startLoad({
    url,
    log,
    clients: 8,
    eventsPerRequest,
    maxRequests: 100_000,
    maxDurationMs: 5000,
    requestTimeoutMs: 15_000,
  });
  await run.done;
  return (log.ids('ok').size / (Date.now() - started)) * 1000;
}

describe(`soak at half of saturation for ${soakSeconds} s`, () => {
  it(
    'keeps RSS, latency, connections and cache keys flat with zero errors',
    async () => {
      const url = `${server.url}/events/bulk`;
      const saturationLog = new OutcomeLog();
      const saturationEventsPerSecond = await measureSaturation(url, saturationLog);
      const requestsPerSecond = (0.5 * saturationEventsPerSecond) / eventsPerRequest;

      const startedAt = Date.now();
      const log = new OutcomeLog();
      const metricsAnswers: { status: number; at: number; ms: number }[] = [];
      const samples: {
        t: number;
        rss: number;
        connections: number;
        writerConnections: number;
        cacheKeys: number;
      }[] = [];
      const endAt = startedAt + soakSeconds * 1000;
      let outstanding = 0;
      let skipped = 0;
      let sent = 0;
      const inFlight = new Set<Promise<void>>();
      const track = (p: Promise<void>) => {
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      };

      const sampler = (async () => {
        while (Date.now() < endAt) {
          const byApplication = await connectionsByApplication(db);
          samples.push({
            t: Date.now() - startedAt,
            rss: rssMb(server.child.pid!),
            connections: total(byApplication),
            writerConnections: total(
              Object.fromEntries(
                Object.entries(byApplication).filter(([name]) => name.startsWith('pulse-writer')),
              ),
            ),
            cacheKeys: (await readGauge(server.url, 'pulse_metrics_cache_keys')) ?? -1,
          });
          await sleep(sampleEveryMs);
        }
      })();

      let metricsSent = 0;
      while (Date.now() < endAt) {
        const elapsedS = (Date.now() - startedAt) / 1000;
        for (; sent < Math.floor(elapsedS * requestsPerSecond); sent++) {
          if (outstanding >= maxOutstanding) {
            skipped++;
            continue;
          }
          outstanding++;
          const events = Array.from({ length: eventsPerRequest }, (_, i) => ({
            event_id: randomUUID(),
            event_name: `soak-${i % 5}`,
            user_id: `user-${sent % 1000}`,
            timestamp: 1_700_000_000 + ((sent * eventsPerRequest + i) % 864_000),
          }));
          track(
            sendBulk(url, events, { requestTimeoutMs: 15_000 }).then((record) => {
              outstanding--;
              log.records.push(record);
            }),
          );
        }
        for (; metricsSent < Math.floor(elapsedS * metricsQueriesPerSecond); metricsSent++) {
          const q = metricsSent % distinctMetricsQueries;
          const query = `from=${1_700_000_000 - q * 3600}&to=1700864000&event_name=soak-${q % 5}&group_by=day`;
          const askedAt = Date.now();
          const answered = (status: number) => {
            metricsAnswers.push({ status, at: askedAt - startedAt, ms: Date.now() - askedAt });
          };
          track(
            fetch(`${server.url}/metrics?${query}`, { signal: AbortSignal.timeout(15_000) })
              .then(async (res) => {
                await res.arrayBuffer();
                answered(res.status);
              })
              .catch(() => answered(0)),
          );
        }
        await sleep(10);
      }
      await Promise.all([...inFlight]);
      await sampler;

      const p99Between = (fromS: number, toS: number) =>
        percentile(
          log.records
            .filter(
              (r) => r.sentAt - startedAt >= fromS * 1000 && r.sentAt - startedAt < toS * 1000,
            )
            .map((r) => r.answeredAt - r.sentAt)
            .sort((a, b) => a - b),
          99,
        );
      // Each window's p99 is the median of its 10 s slices' p99s: a burst from another process on
      // the two shared cores spoils one slice, not the verdict, while a real upward trend moves
      // every slice of the last window.
      const sliceSeconds = Math.min(10, windowSeconds);
      const windowP99 = (fromS: number) => {
        const slices = Array.from({ length: Math.floor(windowSeconds / sliceSeconds) }, (_, i) =>
          p99Between(fromS + i * sliceSeconds, fromS + (i + 1) * sliceSeconds),
        ).sort((a, b) => a - b);
        return { median: slices[Math.floor(slices.length / 2)] ?? 0, slices };
      };
      const reference = windowP99(warmupSeconds);
      const end = windowP99(soakSeconds - windowSeconds);
      const p99Reference = reference.median;
      const p99End = end.median;
      const perMinuteP99 = Array.from({ length: Math.ceil(soakSeconds / 60) }, (_, m) =>
        p99Between(m * 60, Math.min((m + 1) * 60, soakSeconds)),
      );
      const afterWarmup = samples.filter((s) => s.t >= warmupSeconds * 1000);
      const rssPoints = afterWarmup.map((s) => ({ t: s.t, y: s.rss }));
      // Fitted to the floor: with 2 minutes after warm-up, a least-squares line through the raw
      // samples follows where in the sawtooth the run happened to end (+2 MB/min on a run whose
      // RSS ended 2 MB below where it started).
      const rssFloors = floorPerWindow(rssPoints, rssFloorWindowMs);
      const rssSlope = slopePerMinute(rssFloors);
      const rssFloorRise = Math.max(...rssFloors.map((f) => f.y)) - (rssFloors[0]?.y ?? Infinity);
      const rssRawSlope = slopePerMinute(rssPoints);
      const connections = afterWarmup.map((s) => s.connections);
      const writerConnections = afterWarmup.map((s) => s.writerConnections);
      const cacheKeys = samples.map((s) => s.cacheKeys);
      const everything = new OutcomeLog();
      // A loop, not push(...): a 600 s soak has more records than a call can take as arguments.
      for (const r of saturationLog.records) everything.records.push(r);
      for (const r of log.records) everything.records.push(r);
      const verdict = judge(everything, await readStoredIds(db));
      const ingestErrors = log.records.filter((r) => r.status !== 202);
      const metricsErrors = metricsAnswers.filter((a) => a.status !== 200);
      const rssValues = samples.map((s) => s.rss);
      const metricsMs = metricsAnswers.map((a) => a.ms).sort((a, b) => a - b);
      const refreshes = server.lines
        .filter((l) => l.includes('"rollup refreshed"'))
        .map((l) => JSON.parse(l) as { rows: number; ms: number });
      // A few ms of slack on top of the ratio: at half load p99 is tens of ms, where one scheduler
      // hiccup on the two shared cores would otherwise decide the ratio.
      const p99SlackMs = 5;
      writeScenarioResults(
        summarize('soak', startedAt, log, verdict, {
          rss_mb: {
            start: rssValues[0] ?? 0,
            end: rssValues.at(-1) ?? 0,
            max: Math.max(...rssValues),
          },
          extra: {
            soak_seconds: soakSeconds,
            warmup_seconds: warmupSeconds,
            window_seconds: windowSeconds,
            saturation_events_per_s: Math.round(saturationEventsPerSecond),
            paced_requests_per_s: Math.round(requestsPerSecond * 10) / 10,
            paced_events_per_s: Math.round(requestsPerSecond * eventsPerRequest),
            skipped_for_outstanding_cap: skipped,
            rss_slope_mb_per_min: Math.round(rssSlope * 1000) / 1000,
            rss_slope_method: `least squares through the minimum of each ${rssFloorWindowMs / 1000} s window after warm-up`,
            rss_raw_sample_slope_mb_per_min: Math.round(rssRawSlope * 1000) / 1000,
            rss_floor_mb: rssFloors.map((f) => f.y),
            rss_floor_rise_mb: Math.round(rssFloorRise * 10) / 10,
            p99_reference_ms: p99Reference,
            p99_end_ms: p99End,
            p99_reference_slices_ms: reference.slices,
            p99_end_slices_ms: end.slices,
            p99_whole_reference_window_ms: p99Between(warmupSeconds, warmupSeconds + windowSeconds),
            p99_whole_end_window_ms: p99Between(soakSeconds - windowSeconds, soakSeconds),
            p99_per_minute_ms: perMinuteP99,
            connections_after_warmup: {
              min: Math.min(...connections),
              max: Math.max(...connections),
            },
            writer_connections_after_warmup: {
              min: Math.min(...writerConnections),
              max: Math.max(...writerConnections),
            },
            connection_budget: connectionBudget,
            cache_keys_max: Math.max(...cacheKeys),
            metrics_queries: metricsAnswers.length,
            metrics_latency_ms: {
              p50: percentile(metricsMs, 50),
              p99: percentile(metricsMs, 99),
              max: metricsMs.at(-1) ?? 0,
            },
            rollup_refresh: {
              rounds: refreshes.length,
              rows_p50: percentile(
                refreshes.map((r) => r.rows).sort((a, b) => a - b),
                50,
              ),
              ms_p50: percentile(
                refreshes.map((r) => r.ms).sort((a, b) => a - b),
                50,
              ),
              ms_max: Math.max(0, ...refreshes.map((r) => r.ms)),
            },
            metrics_errors: metricsErrors.length,
            metrics_error_reasons: [
              ...new Set(
                server.lines
                  .filter((l) => l.includes('metrics query failed'))
                  .map((l) => (JSON.parse(l) as { err?: string }).err),
              ),
            ].slice(0, 5),
            ingest_errors: ingestErrors.length,
            samples: samples.length,
          },
          failures: [
            ...(metricsErrors.length > 0 ? [`${metricsErrors.length} /metrics errors`] : []),
            ...(strict && rssSlope >= 0.5 ? [`RSS floor slope ${rssSlope.toFixed(2)} MB/min`] : []),
            ...(rssFloorRise > maxShortRunRssRiseMb
              ? [`RSS floor rose ${rssFloorRise} MB after warm-up`]
              : []),
            ...(p99End > 1.2 * p99Reference + p99SlackMs
              ? [`end p99 ${p99End} ms > 1.2 × ${p99Reference} ms`]
              : []),
          ],
        }),
      );

      expect(ingestErrors.map((r) => ({ status: r.status, code: r.code, error: r.error }))).toEqual(
        [],
      );
      // Every /metrics answer is a 200: with hour cells and the tail's BRIN ranges summarized, a read
      // costs tens of ms under this load (the figures above), far from the pool's wait budget.
      expect(metricsErrors).toEqual([]);
      // `skipped` (the client's own outstanding cap) is reported, not asserted: it fires when the
      // shared machine stalls the server for seconds, which the p99 windows already judge.
      expect(verdict).toEqual({ lostAcked: [], leakedRejected: [], phantom: [], duplicated: [] });
      // A 0.5 MB/min leak adds 1 MB over the 2 minutes after warm-up of the default run, well
      // inside the several MB V8's heap sizing moves the floor by (measured: +2.8 and -1.0 MB/min
      // on runs without a leak). So the default run asserts a bound a gross leak would break, and
      // the slope is asserted in `npm run test:chaos`, whose 8 minutes after warm-up resolve it.
      expect(rssFloorRise).toBeLessThanOrEqual(maxShortRunRssRiseMb);
      if (strict) expect(rssSlope).toBeLessThan(0.5);
      // The latency trend is recorded in every run but asserted only in `npm run test:chaos`: on 2
      // shared cores a 3-minute run's p99 swings with the machine, and CI must not flip on it.
      if (strict) expect(p99End).toBeLessThanOrEqual(1.2 * p99Reference + p99SlackMs);
      // Writers hold theirs for the life of the thread: constant. The reader pool opens up to
      // METRICS_POOL_SIZE on demand and closes idle ones after 30 s, by design: bounded, not constant.
      expect(Math.max(...writerConnections)).toBe(Math.min(...writerConnections));
      expect(Math.max(...connections)).toBeLessThanOrEqual(connectionBudget);
      expect(Math.max(...cacheKeys)).toBeLessThanOrEqual(distinctMetricsQueries);
      expect(Math.min(...cacheKeys)).toBeGreaterThanOrEqual(0); // -1: the gauge is missing
      // The soak itself, plus the saturation measurement, the in-flight tail and the oracle's read.
    },
    (soakSeconds + 120) * 1000,
  );
});
