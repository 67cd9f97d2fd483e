// GET /events/export: NDJSON of stored events, streamed with uWS backpressure. A client that stops
// reading pauses the cursor; one that disconnects closes it and returns the connection. An export
// holds one of EXPORT_POOL_SIZE connections for as long as its reader takes, so a reader is cut
// (connection closed, body incomplete) when it takes nothing for EXPORT_STALL_TIMEOUT_MS, falls
// below EXPORT_MIN_BYTES_PER_SEC, or reaches EXPORT_MAX_DURATION_MS.
import type pg from 'pg';
import type { Logger } from 'pino';
import type { TemplatedApp } from 'uWebSockets.js';
import type { Config } from '../../config.js';
import { problem, shuttingDownProblem, type Problem } from '../../errors.js';
import { parseTimeWindow } from '../../metrics/time-window.js';
import { openEventExport, type ExportTimeouts } from '../../sql/export-events.js';
import type { Authorize } from '../api-key-auth.js';
import { clientIdentity } from '../client-identity.js';
import { beginExchange, finishStream, sendProblem, startStream, writeStream } from '../exchange.js';
import { ExportSlots } from '../export-slots.js';
import { limitRate, type RateLimiter } from '../rate-limiter.js';
import { readHead } from '../read-body.js';
import { ThroughputFloor } from '../throughput-floor.js';

export interface ExportRouteDeps {
  readonly config: Config;
  readonly pool: pg.Pool;
  readonly rateLimiter: RateLimiter;
  readonly authorize: Authorize;
  readonly log: Logger;
  readonly isDraining: () => boolean;
}

const exportParameters = ['event_name', 'channel', 'from', 'to'];
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

export function registerExportRoutes(app: TemplatedApp, deps: ExportRouteDeps): void {
  const { config } = deps;
  const slots = new ExportSlots(config.exportPoolSize, config.exportMaxPerClient);
  const timeouts = exportTimeouts(config);
  app.get('/events/export', (res, req) => {
    const exchange = beginExchange(res);
    const head = readHead(req, deps.config.maxHeaderBytes);
    if (head.tooLarge) {
      sendProblem(exchange, head.tooLarge);
      return;
    }
    if (deps.isDraining()) {
      sendProblem(exchange, shuttingDownProblem(deps.config.retryAfterSeconds), { close: true });
      return;
    }
    const auth = deps.authorize(res, head);
    if (!auth.ok) {
      sendProblem(exchange, auth.problem);
      return;
    }
    if (deps.rateLimiter.enabled) {
      const limited = limitRate(deps.rateLimiter, clientIdentity(res, auth.keyId), exportLimit);
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
    const slot = slots.take(clientIdentity(res, auth.keyId));
    if (!slot.ok) {
      sendProblem(exchange, refusal(slot.refusal, config));
      return;
    }
    void (async () => {
      let stream;
      try {
        stream = await openEventExport(deps.pool, parsed.query, timeouts);
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
  });
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
