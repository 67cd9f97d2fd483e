// GET /internal/metrics: the Prometheus text exposition. Same auth as the other API routes.
import type { Logger } from 'pino';
import { problem } from '../../errors.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { send, sendProblem } from '../exchange.js';
import { authFailures429, headSizeResponses, problemResponse } from '../openapi.js';
import type { Route } from '../route.js';

export function telemetryRoutes(deps: {
  readonly telemetry: Telemetry;
  readonly log: Logger;
}): Route[] {
  return [
    {
      method: 'get',
      path: '/internal/metrics',
      auth: 'admin',
      refusedWhileDraining: false,
      readsHead: true,
      handler: (exchange) => {
        deps.telemetry.registry
          .metrics()
          .then((text) =>
            send(exchange, 200, text, { contentType: deps.telemetry.registry.contentType }),
          )
          .catch((err: unknown) => {
            deps.log.error({ err: (err as Error).message }, 'metrics exposition failed');
            sendProblem(exchange, problem('internal', 'The metrics could not be collected.'));
          });
      },
      operation: {
        summary: 'Prometheus text exposition of the service counters, gauges and histograms',
        responses: {
          '200': {
            description: 'Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
          '401': problemResponse(['unauthorized']),
          ...headSizeResponses,
          '429': authFailures429,
          '500': problemResponse(['internal']),
        },
      },
    },
  ];
}
