// GET /events/export: NDJSON of stored events, streamed with uWS backpressure. A client that stops
// reading pauses the cursor; one that disconnects closes it and returns the connection. An export
// holds one of EXPORT_POOL_SIZE connections for as long as its reader takes, so a reader is cut
// (connection closed, body incomplete) when it takes nothing for EXPORT_STALL_TIMEOUT_MS, falls
// below EXPORT_MIN_BYTES_PER_SEC, or reaches EXPORT_MAX_DURATION_MS.
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import { problem, type Problem } from '../../errors.js';
import { parseTimeWindow } from '../../metrics/time-window.js';
import { openEventExport, type ExportTimeouts } from '../../sql/export-events.js';
import { clientIdentity } from '../client-identity.js';
import { finishStream, sendProblem, startStream, writeStream } from '../exchange.js';
import { ExportSlots } from '../export-slots.js';
import { limitRate, type RateLimiter } from '../rate-limiter.js';
import {
  bodyOf,
  eventFilterParameters,
  exportedEvent,
  headSizeResponses,
  problemResponse,
  queryParameter,
  rateLimitHeaders,
  retryAfterHeader,
} from '../openapi.js';
import type { Route, RouteHandler } from '../route.js';
import { ThroughputFloor } from '../throughput-floor.js';

export interface ExportRouteDeps {
  readonly config: Config;
  readonly pool: pg.Pool;
  readonly rateLimiter: RateLimiter;
  readonly log: Logger;
}

const exportParameters = new Set(['event_name', 'channel', 'from', 'to']);
const exportLimit = { requests: 'exports', variable: 'RATE_LIMIT_EXPORTS_PER_MIN' };

/** Reads may take as long as the export waits for its reader; the idle timeout adds 5 s for a busy
 *  event loop, so Postgres ends the session only when this process has stopped serving it. */
function exportTimeouts(config: Config): ExportTimeouts {
  return {
    readMs: config.exportStallTimeoutMs,
    readBackstopMs:
      config.exportStallTimeoutMs + (config.pgQueryTimeoutMs - config.pgStatementTimeoutMs),
    idleMs: config.exportStallTimeoutMs + 5000,
  };
}

export function exportRoutes(deps: ExportRouteDeps): Route[] {
  const { config } = deps;
  const slots = new ExportSlots(config.exportPoolSize, config.exportMaxPerClient);
  const timeouts = exportTimeouts(config);
  const handler: RouteHandler = (exchange, head, caller) => {
    if (deps.rateLimiter.enabled) {
      const limited = limitRate(
        deps.rateLimiter,
        clientIdentity(exchange.res, caller.keyId),
        exportLimit,
      );
      exchange.headers = limited.headers; // on the 200 stream and on every problem alike
      if (limited.refusal) {
        sendProblem(exchange, limited.refusal);
        return;
      }
    }
    const parsed = parseTimeWindow(
      head.query,
      Math.floor(Date.now() / 1000),
      deps.config.metricsMaxWindowDays,
      exportParameters,
    );
    if (!parsed.ok) {
      sendProblem(exchange, parsed.problem);
      return;
    }
    const slot = slots.take(clientIdentity(exchange.res, caller.keyId));
    if (!slot.ok) {
      sendProblem(exchange, refusal(slot.refusal, config));
      return;
    }
    void (async () => {
      let stream;
      try {
        stream = await openEventExport(deps.pool, caller.projectId, parsed.query, timeouts);
      } catch (err) {
        slot.release();
        deps.log.warn({ err: (err as Error).message }, 'export could not start');
        sendProblem(
          exchange,
          problem('database_unavailable', 'The export could not be started.', {
            retryAfterSeconds: config.retryAfterSeconds,
          }),
        );
        return;
      }
      const floor = new ThroughputFloor(
        config.exportMinBytesPerSec,
        config.exportThroughputWindowMs,
      );
      const cutAtMaxDuration = setTimeout(() => {
        deps.log.info({ limit: 'EXPORT_MAX_DURATION_MS' }, 'export cut');
        finishStream(exchange, { abort: true });
      }, config.exportMaxDurationMs);
      let complete = false;
      try {
        startStream(exchange, 200, 'application/x-ndjson');
        for (;;) {
          const chunk = await stream.read(config.exportBatchRows);
          complete = chunk === '';
          if (complete || exchange.aborted) break;
          const allowedWaitMs = Math.min(config.exportStallTimeoutMs, floor.allowedWaitMs());
          const waitStartedMs = performance.now();
          if (!(await writeStream(exchange, chunk, allowedWaitMs))) {
            if (performance.now() - waitStartedMs >= allowedWaitMs)
              deps.log.info(
                {
                  limit:
                    allowedWaitMs < config.exportStallTimeoutMs
                      ? 'EXPORT_MIN_BYTES_PER_SEC'
                      : 'EXPORT_STALL_TIMEOUT_MS',
                },
                'export cut',
              );
            break;
          }
          floor.took(Buffer.byteLength(chunk), performance.now() - waitStartedMs);
        }
      } catch (err) {
        deps.log.warn({ err: (err as Error).message }, 'export failed mid-stream');
      } finally {
        clearTimeout(cutAtMaxDuration);
        await stream.close();
        slot.release();
      }
      // Ended only once the connection and slot are back, so a client that exports again at once
      // finds them free. Cut otherwise: the headers are gone, so the client can tell the body is
      // incomplete only from the connection closing without the final chunk.
      finishStream(exchange, { abort: !complete });
    })();
  };
  return [
    {
      method: 'get',
      path: '/events/export',
      auth: 'read',
      refusedWhileDraining: true,
      readsHead: true,
      handler,
      operation: exportOperation,
      schemas: { ExportedEvent: exportedEvent() },
    },
  ];
}

function refusal(reason: 'client_limit' | 'all_busy', config: Config): Problem {
  const retryAfterSeconds = config.retryAfterSeconds;
  return reason === 'client_limit'
    ? problem(
        'too_many_exports',
        `At most ${config.exportMaxPerClient} exports at once per client (EXPORT_MAX_PER_CLIENT).`,
        { retryAfterSeconds },
      )
    : problem(
        'exports_busy',
        `All ${config.exportPoolSize} export connections are in use (EXPORT_POOL_SIZE).`,
        { retryAfterSeconds },
      );
}

const exportOperation = {
  summary: 'Stored events as NDJSON, in occurred_at order (same window rules as /metrics)',
  parameters: [
    ...eventFilterParameters('Exact match.'),
    queryParameter('from', 'Epoch seconds, inclusive.', { type: 'integer', minimum: 0 }),
    queryParameter('to', 'Epoch seconds, inclusive.', { type: 'integer', minimum: 0 }),
  ],
  responses: {
    '200': {
      description:
        'One JSON object per line: the ingested fields plus received_at (epoch ms). A body cut off without its final chunk is incomplete: the reader was too slow (EXPORT_STALL_TIMEOUT_MS, EXPORT_MIN_BYTES_PER_SEC) or the export ran past EXPORT_MAX_DURATION_MS; page by time.',
      headers: rateLimitHeaders,
      ...bodyOf('application/x-ndjson', 'ExportedEvent'),
    },
    '400': problemResponse(['invalid_query']),
    '401': problemResponse(['unauthorized']),
    ...headSizeResponses,
    '429': {
      ...problemResponse(['rate_limited', 'too_many_auth_failures', 'too_many_exports']),
      headers: { ...retryAfterHeader, ...rateLimitHeaders },
    },
    '503': {
      ...problemResponse(['database_unavailable', 'exports_busy', 'shutting_down']),
      headers: retryAfterHeader,
    },
  },
};
