// OPTIONS on the ingest paths: the CORS preflight a browser sends before a cross-origin POST.
// Without CORS_ORIGINS and project origins it answers as the router would: 405, no CORS headers.
import { problem } from '../../errors.js';
import type { CorsPolicy } from '../cors.js';
import { sendEmpty, sendProblem } from '../exchange.js';
import { headSizeResponses, problemResponse } from '../openapi.js';
import type { Route } from '../route.js';

const varyOrigin = { vary: 'Origin' };

export function corsPreflightRoutes(cors: CorsPolicy, paths: readonly string[]): Route[] {
  return paths.map((path) => ({
    method: 'options',
    path,
    auth: 'none',
    refusedWhileDraining: false,
    readsHead: true,
    refuse: (exchange, p) =>
      sendProblem(exchange, p, cors.enabled() ? { headers: varyOrigin } : undefined),
    handler: (exchange, head) => {
      const headers = cors.preflightHeaders(head.origin);
      if (headers) sendEmpty(exchange, 204, headers);
      else
        sendProblem(exchange, problem('method_not_allowed', `${path} answers POST only.`), {
          headers: cors.enabled() ? { allow: 'POST', ...varyOrigin } : { allow: 'POST' },
          close: true,
        });
    },
    operation: preflightOperation,
  }));
}

const preflightOperation = {
  summary: "CORS preflight: 204 for an origin in CORS_ORIGINS or any project's cors_origins",
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
