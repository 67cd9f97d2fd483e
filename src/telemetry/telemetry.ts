// Prometheus metrics for GET /internal/metrics. Writer threads report through their batch results
// (plain data), so every counter lives here in the main thread and one exposition covers them all.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface TelemetrySources {
  readonly queueDepth: () => number;
  readonly queueDepthBytes: () => number;
  readonly writerUtilization: () => number;
  readonly rollupLagSeconds: () => number | undefined;
  readonly metricsCacheKeys: () => number;
  /** Reads waiting for a reader connection. */
  readonly metricsWaiting: () => number;
  /** Live writer threads (absent where no pool exists, e.g. tests driving the batcher). */
  readonly writerThreads?: () => number;
  /** The uWebSockets.js build serving HTTP (absent where no server runs). */
  readonly uwsBuild?: { readonly packageName: string; readonly version: string };
}

export class Telemetry {
  readonly registry = new Registry();
  readonly eventsReceived: Counter<'route'>;
  readonly eventsInserted: Counter;
  readonly eventsDuplicate: Counter;
  readonly requestsRejected: Counter<'route' | 'code'>;
  readonly eventsRejected: Counter<'route'>;
  readonly batchSize: Histogram;
  readonly batchSeconds: Histogram;
  readonly databaseErrors: Counter<'class' | 'sqlstate'>;
  readonly rollupRefreshSeconds: Histogram;
  readonly metricsCache: Counter<'result'>;
  readonly rateLimited: Counter;

  constructor(sources: TelemetrySources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'pulse_process_' });
    const counter = <L extends string = string>(name: string, help: string, labelNames: L[] = []) =>
      new Counter<L>({ name, help, labelNames, registers });
    const histogram = (name: string, help: string, buckets: number[]) =>
      new Histogram({ name, help, buckets, registers });
    /** A gauge read from its source at each scrape; undefined leaves the last value. */
    const sampled = (name: string, help: string, read: () => number | undefined) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const value = read();
          if (value !== undefined) this.set(value);
        },
      });

    this.eventsReceived = counter(
      'pulse_events_received_total',
      'Validated events handed to the batcher',
      ['route'],
    );
    this.eventsInserted = counter('pulse_events_inserted_total', 'Events newly stored');
    this.eventsDuplicate = counter(
      'pulse_events_duplicate_total',
      'Events already stored (idempotent re-sends)',
    );
    this.requestsRejected = counter(
      'pulse_requests_rejected_total',
      'Ingest requests answered with an error, by problem code',
      ['route', 'code'],
    );
    this.eventsRejected = counter(
      'pulse_events_rejected_total',
      'Invalid events left out of accepted bulk requests (?partial=true)',
      ['route'],
    );
    this.batchSize = histogram(
      'pulse_batch_size_events',
      'Events per INSERT',
      [1, 5, 10, 25, 50, 100, 250, 500, 1000],
    );
    this.batchSeconds = histogram(
      'pulse_batch_flush_seconds',
      'Time from hand-off to a writer thread until the batch committed',
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    );
    this.databaseErrors = counter(
      'pulse_database_errors_total',
      'Failed batch attempts by error class and SQLSTATE',
      ['class', 'sqlstate'],
    );
    this.rollupRefreshSeconds = histogram(
      'pulse_rollup_refresh_seconds',
      'Duration of rollup refreshes this process ran',
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    );
    this.metricsCache = counter(
      'pulse_metrics_cache_total',
      'GET /metrics answers by cache result',
      ['result'],
    );
    this.rateLimited = counter(
      'pulse_rate_limited_total',
      'GET /metrics requests refused with 429',
    );
    sampled(
      'pulse_queue_depth_events',
      'Events accepted and not yet committed',
      sources.queueDepth,
    );
    sampled(
      'pulse_queue_depth_bytes',
      'Bytes of request text accepted and not yet committed (bounded by QUEUE_MAX_BYTES)',
      sources.queueDepthBytes,
    );
    sampled(
      'pulse_metrics_waiting_requests',
      'Reads waiting for a /metrics connection (bounded by METRICS_QUEUE_MAX)',
      sources.metricsWaiting,
    );
    sampled(
      'pulse_writer_utilization_ratio',
      'Share of time writer threads were busy (Piscina utilization)',
      sources.writerUtilization,
    );
    sampled(
      'pulse_rollup_lag_seconds',
      'Seconds since the rollup last absorbed new rows (any process)',
      sources.rollupLagSeconds,
    );
    if (sources.writerThreads)
      sampled(
        'pulse_writer_threads',
        'Live writer threads (a crashed one is replaced by Piscina)',
        sources.writerThreads,
      );
    if (sources.uwsBuild) {
      new Gauge({
        name: 'pulse_uws_build_info',
        help: 'The uWebSockets.js build serving HTTP (always 1; the build is in the labels)',
        labelNames: ['build', 'version'],
        registers,
      }).set({ build: sources.uwsBuild.packageName, version: sources.uwsBuild.version }, 1);
    }
    sampled(
      'pulse_metrics_cache_keys',
      'Answers held in the /metrics cache',
      sources.metricsCacheKeys,
    );
  }
}
