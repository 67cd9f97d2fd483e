// GET /internal/metrics: the Prometheus text exposition. Same auth as the other API routes.
import type { Logger } from 'pino';
import type { TemplatedApp } from 'uWebSockets.js';
import { problem } from '../../errors.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import type { Authorize } from '../api-key-auth.js';
import { beginExchange, send, sendProblem } from '../exchange.js';
import { readHead } from '../read-body.js';

export function registerTelemetryRoutes(
  app: TemplatedApp,
  deps: {
    readonly telemetry: Telemetry;
    readonly authorize: Authorize;
    readonly log: Logger;
    readonly maxHeaderBytes: number;
  },
): void {
  app.get('/internal/metrics', (res, req) => {
    const exchange = beginExchange(res);
    const head = readHead(req, deps.maxHeaderBytes);
    if (head.tooLarge) {
      sendProblem(exchange, head.tooLarge);
      return;
    }
    const auth = deps.authorize(res, head);
    if (!auth.ok) {
      sendProblem(exchange, auth.problem);
      return;
    }
    deps.telemetry.registry
      .metrics()
      .then((text) =>
        send(exchange, 200, text, { contentType: deps.telemetry.registry.contentType }),
      )
      .catch((err: unknown) => {
        deps.log.error({ err: (err as Error).message }, 'metrics exposition failed');
        sendProblem(exchange, problem('internal', 'The metrics could not be collected.'));
      });
  });
}
