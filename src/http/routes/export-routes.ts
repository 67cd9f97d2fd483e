// GET /events/export: NDJSON of stored events, streamed with uWS backpressure. A client that stops
// reading pauses the cursor; one that disconnects closes it and returns the connection.
import type pg from 'pg';
import type { Logger } from 'pino';
import type { TemplatedApp } from 'uWebSockets.js';
import type { Config } from '../../config.js';
import { problem, shuttingDownProblem } from '../../errors.js';
import { parseMetricsQuery } from '../../metrics/metrics-query.js';
import { openEventExport } from '../../sql/export-events.js';
import { unauthorizedProblem, type ApiKeyCheck } from '../api-key-auth.js';
import { beginExchange, finishStream, sendProblem, startStream, writeStream } from '../exchange.js';
import { readHead } from '../read-body.js';

export interface ExportRouteDeps {
  readonly config: Config;
  readonly pool: pg.Pool;
  readonly authorize: ApiKeyCheck;
  readonly log: Logger;
  readonly isDraining: () => boolean;
}

const exportParameters = ['event_name', 'channel', 'from', 'to'];

export function registerExportRoutes(app: TemplatedApp, deps: ExportRouteDeps): void {
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
    if (!deps.authorize(head).ok) {
      sendProblem(exchange, unauthorizedProblem);
      return;
    }
    const parsed = parseMetricsQuery(
      head.query,
      Math.floor(Date.now() / 1000),
      deps.config.metricsMaxWindowDays,
      exportParameters,
    );
    if (!parsed.ok) {
      sendProblem(exchange, parsed.problem);
      return;
    }
    void (async () => {
      let stream;
      try {
        stream = await openEventExport(deps.pool, parsed.query);
      } catch (err) {
        deps.log.warn({ err: (err as Error).message }, 'export could not start');
        sendProblem(
          exchange,
          problem('database_unavailable', 'The export could not be started.', {
            retryAfterSeconds: deps.config.retryAfterSeconds,
          }),
        );
        return;
      }
      try {
        startStream(exchange, 200, 'application/x-ndjson');
        for (;;) {
          const chunk = await stream.read(deps.config.exportBatchRows);
          if (chunk === '' || exchange.aborted) break;
          if (!(await writeStream(exchange, chunk, deps.config.exportStallTimeoutMs))) break;
        }
        finishStream(exchange);
      } catch (err) {
        // Headers are gone already: all we can do is cut the stream so the client sees it incomplete.
        deps.log.warn({ err: (err as Error).message }, 'export failed mid-stream');
        finishStream(exchange, { abort: true });
      } finally {
        await stream.close();
      }
    })();
  });
}
