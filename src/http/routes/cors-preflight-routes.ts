// OPTIONS on the ingest paths: the CORS preflight a browser sends before a cross-origin POST.
// Without CORS_ORIGINS no such route exists, and a preflight gets the router's 405.
import type { Config } from '../../config.js';
import { problem } from '../../errors.js';
import { createCorsPolicy } from '../cors.js';
import { sendEmpty, sendProblem } from '../exchange.js';
import { headSizeResponses, problemResponse } from '../openapi.js';
import type { Route } from '../route.js';

const varyOrigin = { vary: 'Origin' };

export function corsPreflightRoutes(config: Config, paths: readonly string[]): Route[] {
  const cors = createCorsPolicy(config.corsOrigins);
  if (!cors.enabled) return [];
  return paths.map((path) => ({
    method: 'options',
    path,
    auth: 'none',
    refusedWhileDraining: false,
    readsHead: true,
    refuse: (exchange, p) => sendProblem(exchange, p, { headers: varyOrigin }),
    handler: (exchange, head) => {
      const headers = cors.preflightHeaders(head.origin);
      if (headers) sendEmpty(exchange, 204, headers);
      else
        sendProblem(exchange, problem('method_not_allowed', `${path} answers POST only.`), {
          headers: { allow: 'POST', ...varyOrigin },
          close: true,
        });
    },
    operation: preflightOperation,
  }));
}

const preflightOperation = {
  summary: 'CORS preflight (only with CORS_ORIGINS set)',
  responses: {
    '204': {
      description: 'The Origin is allowed; it is echoed in Access-Control-Allow-Origin.',
      headers: {
        'Access-Control-Allow-Origin': { schema: { type: 'string' } },
        'Access-Control-Allow-Methods': { schema: { type: 'string', const: 'POST' } },
        'Access-Control-Allow-Headers': { schema: { type: 'string' } },
        'Access-Control-Max-Age': { schema: { type: 'integer' } },
        Vary: { schema: { type: 'string', const: 'Origin' } },
      },
    },
    '405': problemResponse(['method_not_allowed']),
    ...headSizeResponses,
  },
};
