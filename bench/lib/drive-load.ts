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
  const url = new URL(options.url);
  let head = `POST ${options.path} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: keep-alive\r\n`;
  for (const [name, value] of Object.entries({
    'content-type': 'application/json',
    ...options.headers,
  }))
    head += `${name}: ${value}\r\n`;
  head += 'Content-Length: ';
  return runAutocannon(
    {
      url: options.url,
      connections: options.connections,
      duration: options.durationSeconds,
      // Past the run's end a stuck request is an error, not a hang.
      timeout: 10,
      // Never sent: every request's bytes come from getRequestBuffer below.
      requests: [{ method: 'POST', path: options.path, body: '{}' }],
      setupClient: (client) => {
        // A fresh body through `setupRequest` makes autocannon rebuild every request with its
        // generic builder (~11 µs of CPU each, taken from the server on the same cores). autocannon
        // 8 (pinned) reads each request's bytes through getRequestBuffer, once per request.
        const writable = client as unknown as { getRequestBuffer?: () => Buffer };
        if (typeof writable.getRequestBuffer !== 'function')
          throw new Error('autocannon no longer has Client.getRequestBuffer: see drive-load.ts');
        writable.getRequestBuffer = () => {
          const body = options.nextBody();
          return Buffer.from(`${head}${Buffer.byteLength(body)}\r\n\r\n${body}`);
        };
      },
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
