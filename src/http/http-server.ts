// The uWS app: the route table, the preamble every route shares, the 404/405 fallbacks, listening
// and closing the listen socket.
import type pg from 'pg';
import type { Logger } from 'pino';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import type { AccessStore } from '../access/access-store.js';
import { openCaller } from '../access/caller.js';
import { IngestQuotas } from '../access/ingest-quota.js';
import type { Config } from '../config.js';
import { problem, shuttingDownProblem, type Problem } from '../errors.js';
import type { Batcher } from '../ingest/batcher.js';
import type { MetricsCache } from '../metrics/metrics-cache.js';
import type { DatabaseProbe } from '../sql/database-probe.js';
import type { QueuedPool } from '../sql/queued-pool.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import type { CellBitmapCache } from '../metrics/cell-bitmap-cache.js';
import { createApiKeyCheck, createAuthorize, type Authorize } from './api-key-auth.js';
import { AuthFailureLimiter } from './auth-failure-limiter.js';
import { createCorsPolicy } from './cors.js';
import {
  beginExchange,
  closeOpenExchanges,
  countOpenExchanges,
  sendProblem,
  type Exchange,
} from './exchange.js';
import type { Uws } from './load-uws.js';
import { renderOpenApiYaml } from './openapi.js';
import { ProjectRateLimiters } from './project-rate-limiters.js';
import { RateLimiter } from './rate-limiter.js';
import { readHead, unreadHead } from './request-head.js';
import { registerLive, type LiveAuthorize, type LiveEndpoint } from '../live/live-endpoint.js';
import type { Route } from './route.js';
import { adminRoutes } from './routes/admin-routes.js';
import { corsPreflightRoutes } from './routes/cors-preflight-routes.js';
import { dashboardRoutes, type DashboardPage } from './routes/dashboard-routes.js';
import { exportRoutes } from './routes/export-routes.js';
import { healthRoutes } from './routes/health-routes.js';
import { ingestRoutes } from './routes/ingest-routes.js';
import { metricsRoutes } from './routes/metrics-routes.js';
import { telemetryRoutes } from './routes/telemetry-routes.js';

export interface HttpServerDeps {
  readonly config: Config;
  readonly batcher: Batcher;
  readonly probe: DatabaseProbe;
  /** /metrics and /live's reads. */
  readonly readPool: QueuedPool;
  /** /events/export only (EXPORT_POOL_SIZE). */
  readonly exportPool: pg.Pool;
  readonly metricsCache: MetricsCache;
  readonly cellBitmaps: CellBitmapCache;
  readonly telemetry: Telemetry;
  /** Projects and keys, kept current in memory. */
  readonly access: AccessStore;
  /** The admin API's statements. */
  readonly adminPool: pg.Pool;
  /** The dashboard's files, loaded at start-up. */
  readonly dashboard: DashboardPage;
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

export interface App {
  readonly app: TemplatedApp;
  /** Set once shutdown starts. */
  readonly lifecycle: { draining: boolean };
  /** Path → the methods it answers, for 405 and its Allow header. */
  readonly allowedMethods: Readonly<Record<string, string>>;
  /** GET /live's connections. */
  readonly live: LiveEndpoint;
}

export function createApp(uws: Uws, deps: HttpServerDeps): App {
  const { config, log, telemetry } = deps;
  const app = uws.App();
  const lifecycle = { draining: false };
  const isDraining = () => lifecycle.draining;
  let openApiYaml = '';
  const access = () => deps.access.snapshot;
  const cors = createCorsPolicy(config.corsOrigins, access);
  const quotas = new IngestQuotas(config.clusterProcesses);
  const ingest = ingestRoutes({
    config,
    batcher: deps.batcher,
    log,
    telemetry,
    cors,
    takeQuota: (caller, events) => quotas.take(access().projects.get(caller.projectId), events),
  });
  const routes: Route[] = [
    ...ingest,
    ...corsPreflightRoutes(
      cors,
      ingest.map((route) => route.path),
    ),
    ...metricsRoutes({
      config,
      pool: deps.readPool,
      cache: deps.metricsCache,
      cellBitmaps: deps.cellBitmaps,
      rateLimiters: new ProjectRateLimiters(
        new RateLimiter(config.rateLimitMetricsPerMin, config.rateLimitMaxClients),
        (projectId) => access().projects.get(projectId)?.metrics_requests_per_minute ?? null,
        config.rateLimitMaxClients,
      ),
      log,
      telemetry,
    }),
    ...exportRoutes({
      config,
      pool: deps.exportPool,
      rateLimiter: new RateLimiter(config.rateLimitExportsPerMin, config.rateLimitMaxClients),
      log,
    }),
    ...healthRoutes({
      batcher: deps.batcher,
      probe: deps.probe,
      queueMaxSize: config.queueMaxSize,
      queueMaxBytes: config.queueMaxBytes,
      ingestTimeoutMs: config.ingestTimeoutMs,
      openApiYaml: () => openApiYaml,
      isDraining,
    }),
    ...telemetryRoutes({ telemetry, log }),
    ...adminRoutes({
      config,
      pool: deps.adminPool,
      reloadAccess: () => deps.access.reload(),
      log,
    }),
    ...dashboardRoutes(deps.dashboard),
  ];
  openApiYaml = renderOpenApiYaml(config, routes);
  const preamble: Preamble = {
    authorize: createAuthorize(
      createApiKeyCheck(config.apiKeys, access),
      new AuthFailureLimiter(config.authFailuresPerMin, config.rateLimitMaxClients),
    ),
    isDraining,
    maxHeaderBytes: config.maxHeaderBytes,
    retryAfterSeconds: config.retryAfterSeconds,
  };
  for (const route of routes)
    app[route.method === 'delete' ? 'del' : route.method](route.path, serve(route, preamble));
  const live = registerLive(app, {
    limits: {
      maxClients: config.liveMaxClients,
      maxBufferedBytes: config.liveMaxBufferedBytes,
      maxMessageBytes: config.liveMaxMessageBytes,
      eventsPerSecond: config.liveEventsPerSecond,
      idleTimeoutSeconds: config.liveIdleTimeoutSeconds,
      catchUpMs: config.liveCatchUpMs,
    },
    metricsLimits: {
      maxWindowDays: config.metricsMaxWindowDays,
      maxBuckets: config.metricsMaxBuckets,
      maxSeriesBuckets: config.metricsMaxSeriesBuckets,
    },
    pool: deps.readPool,
    metricsSources: { pool: deps.readPool, cellBitmaps: deps.cellBitmaps },
    authorize: liveAuthorize(preamble.authorize),
    isDraining,
    log,
  });
  // A GET that is not an upgrade falls through the WebSocket route to here.
  app.get('/live', (res) =>
    sendProblem(
      beginExchange(res),
      problem('upgrade_required', 'GET /live upgrades to a WebSocket: send Upgrade: websocket.'),
      { headers: { upgrade: 'websocket' } },
    ),
  );
  // Method-specific routes win over any(); what reaches here is a wrong method or an unknown path.
  const allowedMethods = { ...allowedMethodsOf(routes), '/live': 'GET' };
  for (const [path, allow] of Object.entries(allowedMethods)) {
    app.any(path, (res) =>
      sendProblem(
        beginExchange(res),
        problem('method_not_allowed', `${path} answers ${allow} only.`),
        { headers: { allow }, close: true },
      ),
    );
  }
  // The request's path is never echoed: a reflected path is an injection vector.
  app.any('/*', (res) =>
    sendProblem(beginExchange(res), problem('not_found', 'No route for this method and path.'), {
      close: true,
    }),
  );
  return { app, lifecycle, allowedMethods, live };
}

/** /live's key check: the HTTP one for the read scope, the key coming from the subscribe message. */
function liveAuthorize(authorize: Authorize): LiveAuthorize {
  return (peer, key) => {
    const auth = authorize(peer, { ...unreadHead, apiKey: key ?? '' }, 'read');
    if (auth.ok) return { ok: true, projectId: auth.caller.projectId };
    const code = auth.problem.code;
    return {
      ok: false,
      code:
        code === 'insufficient_scope' || code === 'too_many_auth_failures' ? code : 'unauthorized',
      detail:
        code === 'unauthorized'
          ? 'Send a valid read key in the subscribe message.'
          : auth.problem.detail,
    };
  };
}

interface Preamble {
  readonly authorize: Authorize;
  readonly isDraining: () => boolean;
  readonly maxHeaderBytes: number;
  readonly retryAfterSeconds: number;
}

const closeConnection = { close: true };

function refuseAsIs(exchange: Exchange, p: Problem, close: boolean): void {
  sendProblem(exchange, p, close ? closeConnection : undefined);
}

/** What every route does before its handler, in this order: the head within MAX_HEADER_BYTES,
 *  then not shutting down, then the key and its scope (401 unknown or revoked, 403 another scope). */
function serve(route: Route, preamble: Preamble): (res: HttpResponse, req: HttpRequest) => void {
  const { handler, refuse = refuseAsIs, responseHeaders } = route;
  const { authorize, isDraining, maxHeaderBytes, retryAfterSeconds } = preamble;
  if (!route.readsHead) {
    if (route.auth !== 'none' || route.refusedWhileDraining)
      throw new Error(`${route.path}: a route that reads no head can check neither key nor drain`);
    return (res) => handler(beginExchange(res), unreadHead, openCaller);
  }
  const { auth: scope, keyedWhenOpen = false, refusedWhileDraining } = route;
  const hasParameter = route.path.includes('/:');
  return (res, req) => {
    const exchange = beginExchange(res);
    const head = readHead(req, maxHeaderBytes, hasParameter);
    if (responseHeaders) exchange.headers = responseHeaders(head);
    if (head.tooLarge) return refuse(exchange, head.tooLarge, false);
    if (refusedWhileDraining && isDraining())
      return refuse(exchange, shuttingDownProblem(retryAfterSeconds), true);
    if (scope === 'none') return handler(exchange, head, openCaller);
    const auth = authorize(res, head, scope, keyedWhenOpen);
    if (!auth.ok) return refuse(exchange, auth.problem, false);
    handler(exchange, head, auth.caller);
  };
}

/** OPTIONS is left out: it is the CORS preflight, which answers only allowed origins. */
function allowedMethodsOf(routes: readonly Route[]): Record<string, string> {
  const allowed: Record<string, string> = {};
  for (const { path, method } of routes) {
    if (method === 'options') continue;
    const name = method.toUpperCase();
    allowed[path] = allowed[path] === undefined ? name : `${allowed[path]}, ${name}`;
  }
  return allowed;
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
