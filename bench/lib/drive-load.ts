// One bounded autocannon run (programmatic API) against one endpoint: POST with a fresh body per
// request (ingest), or GET with a fresh path per request (metrics).
import autocannon from 'autocannon';

export interface LoadOptions {
  readonly url: string;
  readonly path: '/events' | '/events/bulk';
  readonly connections: number;
  readonly durationSeconds: number;
  readonly nextBody: () => string;
  readonly headers: Readonly<Record<string, string>>;
  /** Called about once a second with the responses so far. */
  readonly onTick?: (elapsedSeconds: number, responses: number) => void;
}

export interface LoadResult {
  readonly durationSeconds: number;
  readonly responses: number;
  readonly requestsPerSecond: number;
  /** Count by HTTP status, every status seen (202 included). */
  readonly statusCounts: Readonly<Record<string, number>>;
  /** Connection errors and timeouts: requests with no status at all. */
  readonly errors: number;
  readonly timeouts: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly latencyMaxMs: number;
}

export function driveLoad(options: LoadOptions): Promise<LoadResult> {
  return runAutocannon(
    {
      url: options.url,
      connections: options.connections,
      duration: options.durationSeconds,
      // Past the run's end a stuck request is an error, not a hang.
      timeout: 10,
      requests: [
        {
          method: 'POST',
          path: options.path,
          headers: { 'content-type': 'application/json', ...options.headers },
          setupRequest: (request) => ({ ...request, body: options.nextBody() }),
        },
      ],
    },
    options.onTick,
  );
}

export interface GetLoadOptions {
  readonly url: string;
  readonly connections: number;
  readonly durationSeconds: number;
  /** Path and query of every request: a constant, or a fresh one per request. */
  readonly nextPath: () => string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly onTick?: (elapsedSeconds: number, responses: number) => void;
}

/** One bounded autocannon run of GET requests (GET /metrics, or the bare-uWS ceiling). */
export function driveGetLoad(options: GetLoadOptions): Promise<LoadResult> {
  return runAutocannon(
    {
      url: options.url,
      connections: options.connections,
      duration: options.durationSeconds,
      timeout: 10,
      requests: [
        {
          method: 'GET',
          path: options.nextPath(),
          headers: { ...options.headers },
          setupRequest: (request) => ({ ...request, path: options.nextPath() }),
        },
      ],
    },
    options.onTick,
  );
}

function runAutocannon(
  config: autocannon.Options,
  onTick: ((elapsedSeconds: number, responses: number) => void) | undefined,
): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    let responses = 0;
    let ticks = 0;
    const instance = autocannon(config, (err, result) => {
      if (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      const statusCounts: Record<string, number> = {};
      for (const [status, stats] of Object.entries(result.statusCodeStats ?? {}))
        if (stats.count) statusCounts[status] = stats.count;
      const total = Object.values(statusCounts).reduce((a, b) => a + b, 0);
      resolve({
        durationSeconds: result.duration,
        responses: total,
        requestsPerSecond: total / result.duration,
        statusCounts,
        errors: result.errors,
        timeouts: result.timeouts,
        latencyP50Ms: result.latency.p50,
        latencyP99Ms: result.latency.p99,
        latencyMaxMs: result.latency.max,
      });
    });
    // @types/autocannon declares 'tick' without its payload: { counter, bytes } since the last tick.
    (instance as NodeJS.EventEmitter).on('tick', (counts: { counter: number }) => {
      ticks++;
      responses += counts.counter;
      onTick?.(ticks, responses);
    });
  });
}
