// GET /metrics: rate limit → parse → cache (single flight) → rollup + raw tail → ETag/304.
import type { Logger } from 'pino';
import type { TemplatedApp } from 'uWebSockets.js';
import type { Config } from '../../config.js';
import { problem, shuttingDownProblem } from '../../errors.js';
import {
  answerMetrics,
  parseMetricsQuery,
  type MetricsSources,
} from '../../metrics/answer-metrics.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import type { Authorize } from '../api-key-auth.js';
import { beginExchange, send, sendProblem } from '../exchange.js';
import { limitRate, type RateLimiter } from '../rate-limiter.js';
import { clientIdentity } from '../client-identity.js';
import { ifNoneMatchIncludes } from '../if-none-match.js';
import { readHead } from '../read-body.js';

export interface MetricsRouteDeps extends MetricsSources {
  readonly config: Config;
  readonly rateLimiter: RateLimiter;
  readonly authorize: Authorize;
  readonly log: Logger;
  readonly telemetry: Telemetry;
  readonly isDraining: () => boolean;
}

const metricsLimit = { requests: 'metrics requests', variable: 'RATE_LIMIT_METRICS_PER_MIN' };

export function registerMetricsRoutes(app: TemplatedApp, deps: MetricsRouteDeps): void {
  const { config } = deps;
  const cacheControl = `max-age=${Math.floor(config.metricsCacheTtlMs / 1000)}`;
  app.get('/metrics', (res, req) => {
    const exchange = beginExchange(res);
    const head = readHead(req, config.maxHeaderBytes);
    if (head.tooLarge) {
      sendProblem(exchange, head.tooLarge);
      return;
    }
    // The read pool closes during shutdown: say why, rather than "database unavailable".
    if (deps.isDraining()) {
      sendProblem(exchange, shuttingDownProblem(config.retryAfterSeconds), { close: true });
      return;
    }
    const auth = deps.authorize(res, head);
    if (!auth.ok) {
      sendProblem(exchange, auth.problem);
      return;
    }
    let headers: Record<string, string> = {};
    if (deps.rateLimiter.enabled) {
      const limited = limitRate(deps.rateLimiter, clientIdentity(res, auth.keyId), metricsLimit);
      headers = limited.headers;
      if (limited.refusal) {
        deps.telemetry.rateLimited.inc();
        sendProblem(exchange, limited.refusal, { headers });
        return;
      }
    }
    const parsed = parseMetricsQuery(
      head.query,
      Math.floor(Date.now() / 1000),
      config.metricsMaxWindowDays,
    );
    if (!parsed.ok) {
      sendProblem(exchange, parsed.problem, { headers });
      return;
    }
    const query = parsed.query;
    answerMetrics(deps, query)
      .then(({ answer, cached }) => {
        deps.telemetry.metricsCache.inc({ result: cached ? 'hit' : 'miss' });
        const answerHeaders = { ...headers, etag: answer.etag, 'cache-control': cacheControl };
        if (ifNoneMatchIncludes(head.ifNoneMatch, answer.etag)) {
          send(exchange, 304, '', { headers: answerHeaders });
          return;
        }
        const body = `${answer.dataJson.slice(0, -1)},"as_of":${answer.asOfMs},"cached":${cached}}`;
        send(exchange, 200, body, { headers: answerHeaders });
      })
      .catch((err: unknown) => {
        deps.log.warn({ err: (err as Error).message }, 'metrics query failed');
        sendProblem(
          exchange,
          problem('database_unavailable', 'The metrics could not be read from the database.', {
            retryAfterSeconds: config.retryAfterSeconds,
          }),
          { headers },
        );
      });
  });
}
