// The uWS app: routes, the 404/405 fallbacks, listening and closing the listen socket.
import type pg from 'pg';
import type { Logger } from 'pino';
import type { TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import type { Config } from '../config.js';
import { problem } from '../errors.js';
import type { Batcher } from '../ingest/batcher.js';
import type { MetricsCache } from '../metrics/metrics-cache.js';
import type { DatabaseProbe } from '../sql/database-probe.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import { createApiKeyCheck, createAuthorize } from './api-key-auth.js';
import { AuthFailureLimiter } from './auth-failure-limiter.js';
import { beginExchange, closeOpenExchanges, countOpenExchanges, sendProblem } from './exchange.js';
import type { Uws } from './load-uws.js';
import { renderOpenApiYaml } from './openapi.js';
import { RateLimiter } from './rate-limiter.js';
import { registerExportRoutes } from './routes/export-routes.js';
import { registerHealthRoutes } from './routes/health-routes.js';
import { registerIngestRoutes } from './routes/ingest-routes.js';
import type { CellBitmapCache } from '../metrics/cell-bitmap-cache.js';
import { registerMetricsRoutes } from './routes/metrics-routes.js';
import { registerTelemetryRoutes } from './routes/telemetry-routes.js';

export interface HttpServerDeps {
  readonly config: Config;
  readonly batcher: Batcher;
  readonly probe: DatabaseProbe;
  /** Reads for /metrics. */
  readonly readPool: pg.Pool;
  /** /events/export only (EXPORT_POOL_SIZE). */
  readonly exportPool: pg.Pool;
  readonly metricsCache: MetricsCache;
  readonly cellBitmaps: CellBitmapCache;
  readonly telemetry: Telemetry;
  readonly log: Logger;
}

export interface HttpServer {
  readonly port: number;
  /** Close the listen socket and answer new requests on open connections with 503 + close;
   *  requests already begun finish normally. */
  beginDrain(): void;
  /** Requests begun and not yet answered. */
  readonly openRequests: number;
  /** Closes the connections of the requests still open; returns how many. */
  closeOpenRequests(): number;
}

/** Path → methods it answers, for 405 and its Allow header. */
export const routeMethods: Record<string, string> = {
  '/events': 'POST',
  '/events/bulk': 'POST',
  '/healthz': 'GET',
  '/readyz': 'GET',
  '/openapi.yaml': 'GET',
  '/metrics': 'GET',
  '/events/export': 'GET',
  '/internal/metrics': 'GET',
};

export interface App {
  readonly app: TemplatedApp;
  /** Set once shutdown starts. */
  readonly lifecycle: { draining: boolean };
}

export function createApp(uws: Uws, deps: HttpServerDeps): App {
  const app = uws.App();
  const lifecycle = { draining: false };
  const authorize = createAuthorize(
    createApiKeyCheck(deps.config.apiKeys),
    new AuthFailureLimiter(deps.config.authFailuresPerMin, deps.config.rateLimitMaxClients),
  );
  const isDraining = () => lifecycle.draining;
  registerIngestRoutes(app, {
    config: deps.config,
    batcher: deps.batcher,
    authorize,
    log: deps.log,
    isDraining,
    telemetry: deps.telemetry,
  });
  registerMetricsRoutes(app, {
    config: deps.config,
    pool: deps.readPool,
    cache: deps.metricsCache,
    cellBitmaps: deps.cellBitmaps,
    rateLimiter: new RateLimiter(
      deps.config.rateLimitMetricsPerMin,
      deps.config.rateLimitMaxClients,
    ),
    authorize,
    log: deps.log,
    telemetry: deps.telemetry,
    isDraining,
  });
  registerTelemetryRoutes(app, {
    telemetry: deps.telemetry,
    authorize,
    log: deps.log,
    maxHeaderBytes: deps.config.maxHeaderBytes,
  });
  registerExportRoutes(app, {
    config: deps.config,
    pool: deps.exportPool,
    rateLimiter: new RateLimiter(
      deps.config.rateLimitExportsPerMin,
      deps.config.rateLimitMaxClients,
    ),
    authorize,
    log: deps.log,
    isDraining,
  });
  registerHealthRoutes(app, {
    batcher: deps.batcher,
    probe: deps.probe,
    queueMaxSize: deps.config.queueMaxSize,
    queueMaxBytes: deps.config.queueMaxBytes,
    ingestTimeoutMs: deps.config.ingestTimeoutMs,
    openApiYaml: renderOpenApiYaml(deps.config),
    isDraining,
  });
  // Method-specific routes win over any(); what reaches here is a wrong method or an unknown path.
  for (const [path, allow] of Object.entries(routeMethods)) {
    app.any(path, (res) =>
      sendProblem(
        beginExchange(res),
        problem('method_not_allowed', `${path} answers ${allow} only.`),
        {
          headers: { allow },
          close: true,
        },
      ),
    );
  }
  // The request's path is never echoed: a reflected path is an injection vector.
  app.any('/*', (res) =>
    sendProblem(beginExchange(res), problem('not_found', 'No route for this method and path.'), {
      close: true,
    }),
  );
  return { app, lifecycle };
}

export function listen(
  uws: Uws,
  { app, lifecycle }: App,
  host: string,
  port: number,
): Promise<HttpServer> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (token: us_listen_socket | false) => {
      if (!token) {
        reject(new Error(`could not listen on ${host}:${port} (in use, or not permitted)`));
        return;
      }
      let listening: us_listen_socket | null = token;
      resolve({
        port: uws.us_socket_local_port(token),
        beginDrain: () => {
          lifecycle.draining = true;
          if (listening) uws.us_listen_socket_close(listening);
          listening = null;
        },
        get openRequests() {
          return countOpenExchanges();
        },
        closeOpenRequests: closeOpenExchanges,
      });
    });
  });
}
