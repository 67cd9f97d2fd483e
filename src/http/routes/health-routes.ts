// Liveness, readiness and the API description. None of them needs an API key: load balancers and
// orchestrators call them.
import type { TemplatedApp } from 'uWebSockets.js';
import { problem } from '../../errors.js';
import type { Batcher } from '../../ingest/batcher.js';
import type { DatabaseProbe } from '../../sql/database-probe.js';
import { beginExchange, send, sendJson, sendProblem } from '../exchange.js';

export interface HealthRouteDeps {
  readonly batcher: Batcher;
  readonly probe: DatabaseProbe;
  readonly queueMaxSize: number;
  readonly queueMaxBytes: number;
  /** How long a failed write keeps /readyz at 503 when nothing has committed since. */
  readonly ingestTimeoutMs: number;
  readonly openApiYaml: string;
  readonly isDraining: () => boolean;
}

/** Not ready from 90% of QUEUE_MAX_SIZE or QUEUE_MAX_BYTES: a balancer should send traffic
 *  elsewhere before 503s start. */
const queueHighWaterFraction = 0.9;

export function registerHealthRoutes(app: TemplatedApp, deps: HealthRouteDeps): void {
  app.get('/healthz', (res) => sendJson(beginExchange(res), 200, { status: 'ok' }));

  app.get('/readyz', (res) => {
    const exchange = beginExchange(res);
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
  });

  app.get('/openapi.yaml', (res) =>
    send(beginExchange(res), 200, deps.openApiYaml, { contentType: 'application/yaml' }),
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
