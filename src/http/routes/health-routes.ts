// Liveness, readiness and the API description. None of them needs an API key: load balancers and
// orchestrators call them.
import { problem } from '../../errors.js';
import type { Batcher } from '../../ingest/batcher.js';
import type { DatabaseProbe } from '../../sql/database-probe.js';
import { send, sendJson, sendProblem, type Exchange } from '../exchange.js';
import { bodyOf, problemResponse } from '../openapi.js';
import type { Route } from '../route.js';

export interface HealthRouteDeps {
  readonly batcher: Batcher;
  readonly probe: DatabaseProbe;
  readonly queueMaxSize: number;
  readonly queueMaxBytes: number;
  /** How long a failed write keeps /readyz at 503 when nothing has committed since. */
  readonly ingestTimeoutMs: number;
  /** The document is built from every route, this module's included. */
  readonly openApiYaml: () => string;
  readonly isDraining: () => boolean;
}

/** Not ready from 90% of QUEUE_MAX_SIZE or QUEUE_MAX_BYTES: a balancer should send traffic
 *  elsewhere before 503s start. */
const queueHighWaterFraction = 0.9;

export function healthRoutes(deps: HealthRouteDeps): Route[] {
  const route = {
    method: 'get',
    auth: 'none',
    refusedWhileDraining: false,
    readsHead: false,
  } as const;
  return [
    {
      ...route,
      path: '/healthz',
      handler: (exchange) => sendJson(exchange, 200, { status: 'ok' }),
      operation: {
        summary: 'The process is alive',
        responses: { '200': { description: 'Alive', ...bodyOf('application/json', 'Status') } },
      },
      schemas: {
        Status: {
          type: 'object',
          required: ['status'],
          properties: { status: { type: 'string' } },
        },
      },
    },
    {
      ...route,
      path: '/readyz',
      handler: (exchange) => answerReadiness(exchange, deps),
      operation: {
        summary:
          'Database reachable, migrations applied, writes not failing, queue below its high-water mark, not shutting down',
        responses: {
          '200': { description: 'Ready', ...bodyOf('application/json', 'Readiness') },
          '503': problemResponse(['not_ready']),
        },
      },
      schemas: {
        Readiness: {
          type: 'object',
          required: ['status', 'checks'],
          properties: {
            status: { type: 'string' },
            checks: { type: 'object', additionalProperties: { type: 'string' } },
          },
        },
      },
    },
    {
      ...route,
      path: '/openapi.yaml',
      handler: (exchange) =>
        send(exchange, 200, deps.openApiYaml(), { contentType: 'application/yaml' }),
      operation: {
        summary: 'This document',
        responses: {
          '200': {
            description: 'OpenAPI 3.1 YAML',
            content: { 'application/yaml': { schema: { type: 'string' } } },
          },
        },
      },
    },
  ];
}

function answerReadiness(exchange: Exchange, deps: HealthRouteDeps): void {
  const db = deps.probe.state;
  // Bounded by INGEST_TIMEOUT_MS (what a request would wait anyway): a balancer that stops
  // sending traffic must get the instance back even though no batch can prove recovery.
  const failedWrite = deps.batcher.recentWriteFailure(deps.ingestTimeoutMs);
  // Only our own words and codes: the Postgres error behind a failed check names hosts, ports and
  // users, and this route needs no key. The probe logs it.
  const checks = {
    database: db.reachable ? 'ok' : 'unreachable',
    migrations: db.migrated ? 'ok' : db.reachable ? 'not applied' : 'unknown',
    writes: failedWrite ? `failing: sqlstate ${failedWrite.sqlstate}` : 'ok',
    queue: queueCheck(deps),
    // A balancer holding a kept-alive connection would otherwise keep sending to a server that
    // refuses everything: the listen socket is closed, but this connection is not.
    serving: deps.isDraining() ? 'shutting down' : 'ok',
  };
  const failing = Object.entries(checks).filter(([, v]) => v !== 'ok');
  if (failing.length === 0) return sendJson(exchange, 200, { status: 'ready', checks });
  sendProblem(
    exchange,
    problem('not_ready', failing.map(([k, v]) => `${k}: ${v}`).join('; '), {
      extensions: { checks },
    }),
  );
}

function queueCheck(deps: HealthRouteDeps): string {
  const { depth, depthBytes } = deps.batcher;
  if (depth >= Math.floor(deps.queueMaxSize * queueHighWaterFraction))
    return `saturated: ${depth} of ${deps.queueMaxSize} events`;
  if (depthBytes >= Math.floor(deps.queueMaxBytes * queueHighWaterFraction))
    return `saturated: ${depthBytes} of ${deps.queueMaxBytes} bytes`;
  return 'ok';
}
