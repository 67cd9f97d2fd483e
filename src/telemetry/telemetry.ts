// Prometheus metrics for GET /internal/metrics. Writer threads report through their batch results
// (plain data), so every counter lives here in the main thread and one exposition covers them all.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface TelemetrySources {
  readonly queueDepth: () => number;
  readonly queueDepthBytes: () => number;
  readonly writerUtilization: () => number;
  readonly rollupLagSeconds: () => number | undefined;
  readonly metricsCacheKeys: () => number;
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
    this.eventsReceived = new Counter({
      name: 'pulse_events_received_total',
      help: 'Validated events handed to the batcher',
      labelNames: ['route'],
      registers,
    });
    this.eventsInserted = new Counter({
      name: 'pulse_events_inserted_total',
      help: 'Events newly stored',
      registers,
    });
    this.eventsDuplicate = new Counter({
      name: 'pulse_events_duplicate_total',
      help: 'Events already stored (idempotent re-sends)',
      registers,
    });
    this.requestsRejected = new Counter({
      name: 'pulse_requests_rejected_total',
      help: 'Ingest requests answered with an error, by problem code',
      labelNames: ['route', 'code'],
      registers,
    });
    this.eventsRejected = new Counter({
      name: 'pulse_events_rejected_total',
      help: 'Invalid events left out of accepted bulk requests (?partial=true)',
      labelNames: ['route'],
      registers,
    });
    this.batchSize = new Histogram({
      name: 'pulse_batch_size_events',
      help: 'Events per INSERT',
      buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000],
      registers,
    });
    this.batchSeconds = new Histogram({
      name: 'pulse_batch_flush_seconds',
      help: 'Time from hand-off to a writer thread until the batch committed',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.databaseErrors = new Counter({
      name: 'pulse_database_errors_total',
      help: 'Failed batch attempts by error class and SQLSTATE',
      labelNames: ['class', 'sqlstate'],
      registers,
    });
    this.rollupRefreshSeconds = new Histogram({
      name: 'pulse_rollup_refresh_seconds',
      help: 'Duration of rollup refreshes this process ran',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.metricsCache = new Counter({
      name: 'pulse_metrics_cache_total',
      help: 'GET /metrics answers by cache result',
      labelNames: ['result'],
      registers,
    });
    this.rateLimited = new Counter({
      name: 'pulse_rate_limited_total',
      help: 'GET /metrics requests refused with 429',
      registers,
    });
    new Gauge({
      name: 'pulse_queue_depth_events',
      help: 'Events accepted and not yet committed',
      registers,
      collect() {
        this.set(sources.queueDepth());
      },
    });
    new Gauge({
      name: 'pulse_queue_depth_bytes',
      help: 'Bytes of request text accepted and not yet committed (bounded by QUEUE_MAX_BYTES)',
      registers,
      collect() {
        this.set(sources.queueDepthBytes());
      },
    });
    new Gauge({
      name: 'pulse_writer_utilization_ratio',
      help: 'Share of time writer threads were busy (Piscina utilization)',
      registers,
      collect() {
        this.set(sources.writerUtilization());
      },
    });
    new Gauge({
      name: 'pulse_rollup_lag_seconds',
      help: 'Seconds since the rollup last absorbed new rows (any process)',
      registers,
      collect() {
        const lag = sources.rollupLagSeconds();
        if (lag !== undefined) this.set(lag);
      },
    });
    const writerThreads = sources.writerThreads;
    if (writerThreads) {
      new Gauge({
        name: 'pulse_writer_threads',
        help: 'Live writer threads (a crashed one is replaced by Piscina)',
        registers,
        collect() {
          this.set(writerThreads());
        },
      });
    }
    if (sources.uwsBuild) {
      new Gauge({
        name: 'pulse_uws_build_info',
        help: 'The uWebSockets.js build serving HTTP (always 1; the build is in the labels)',
        labelNames: ['build', 'version'],
        registers,
      }).set({ build: sources.uwsBuild.packageName, version: sources.uwsBuild.version }, 1);
    }
    new Gauge({
      name: 'pulse_metrics_cache_keys',
      help: 'Answers held in the /metrics cache',
      registers,
      collect() {
        this.set(sources.metricsCacheKeys());
      },
    });
  }
}
