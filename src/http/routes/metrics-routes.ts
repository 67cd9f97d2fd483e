// GET /metrics: rate limit → parse → cache (single flight) → rollup + raw tail → ETag/304.
import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import { problem } from '../../errors.js';
import { answerMetrics, type MetricsSources } from '../../metrics/answer-metrics.js';
import { parseMetricsQuery } from '../../metrics/metrics-query.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { send, sendProblem } from '../exchange.js';
import type { ProjectRateLimiters } from '../project-rate-limiters.js';
import { limitRate } from '../rate-limiter.js';
import { clientIdentity } from '../client-identity.js';
import { ifNoneMatchIncludes } from '../if-none-match.js';
import {
  bodyOf,
  eventFilterParameters,
  headSizeResponses,
  problemResponse,
  queryParameter,
  rateLimited429,
  rateLimitHeaders,
  retryAfterHeader,
} from '../openapi.js';
import type { Route, RouteHandler } from '../route.js';

export interface MetricsRouteDeps extends MetricsSources {
  readonly config: Config;
  /** RATE_LIMIT_METRICS_PER_MIN, or the project's metrics_requests_per_minute. */
  readonly rateLimiters: ProjectRateLimiters;
  readonly log: Logger;
  readonly telemetry: Telemetry;
}

export function metricsRoutes(deps: MetricsRouteDeps): Route[] {
  const { config } = deps;
  const cacheControl = `max-age=${Math.floor(config.metricsCacheTtlMs / 1000)}`;
  const handler: RouteHandler = (exchange, head, caller) => {
    let headers: Record<string, string> = {};
    const { limiter, variable } = deps.rateLimiters.of(caller.projectId);
    if (limiter.enabled) {
      const limited = limitRate(limiter, clientIdentity(exchange.res, caller.keyId), {
        requests: 'metrics requests',
        variable,
      });
      headers = limited.headers;
      if (limited.refusal) {
        deps.telemetry.rateLimited.inc();
        sendProblem(exchange, limited.refusal, { headers });
        return;
      }
    }
    const parsed = parseMetricsQuery(head.query, Math.floor(Date.now() / 1000), {
      maxWindowDays: config.metricsMaxWindowDays,
      maxBuckets: config.metricsMaxBuckets,
    });
    if (!parsed.ok) {
      sendProblem(exchange, parsed.problem, { headers });
      return;
    }
    const query = parsed.query;
    answerMetrics(deps, caller.projectId, query)
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
  };
  return [
    {
      method: 'get',
      path: '/metrics',
      auth: 'read',
      // The read pool closes during shutdown: say why, rather than "database unavailable".
      refusedWhileDraining: true,
      readsHead: true,
      handler,
      operation: metricsOperation,
      schemas: metricsSchemas,
    },
  ];
}

const metricsOperation = {
  summary: 'Totals, unique users and daily buckets; exact, from the rollup plus the raw tail',
  parameters: [
    ...eventFilterParameters('Exact match; events without a channel never match.'),
    queryParameter('from', 'Epoch seconds, inclusive. Default: to − 24 h.', {
      type: 'integer',
      minimum: 0,
    }),
    queryParameter('to', 'Epoch seconds, inclusive. Default: now (or from, if later).', {
      type: 'integer',
      minimum: 0,
    }),
    queryParameter('group_by', 'Daily UTC buckets.', { type: 'string', enum: ['day'] }),
  ],
  responses: {
    '200': {
      description:
        'The answer; ETag and Cache-Control set; RateLimit-* headers when limiting is on.',
      headers: { ETag: { schema: { type: 'string' } }, ...rateLimitHeaders },
      ...bodyOf('application/json', 'MetricsAnswer'),
    },
    '304': { description: 'Not modified (If-None-Match matched the ETag).' },
    '400': problemResponse(['invalid_query']),
    '401': problemResponse(['unauthorized']),
    ...headSizeResponses,
    '429': rateLimited429,
    '503': {
      ...problemResponse(['database_unavailable', 'shutting_down']),
      headers: retryAfterHeader,
    },
  },
};

const metricsSchemas = {
  MetricsAnswer: {
    type: 'object',
    required: ['totals', 'as_of', 'cached'],
    properties: {
      totals: { $ref: '#/components/schemas/Counts' },
      buckets: {
        type: 'array',
        description: 'Only with group_by=day: one per UTC day that has events, ascending.',
        items: {
          allOf: [
            { $ref: '#/components/schemas/Counts' },
            {
              type: 'object',
              required: ['bucket_start'],
              properties: { bucket_start: { type: 'integer' } },
            },
          ],
        },
      },
      as_of: {
        type: 'integer',
        description: 'Epoch ms of the database snapshot the numbers reflect.',
      },
      cached: { type: 'boolean', description: 'True when served from the in-process cache.' },
    },
  },
  Counts: {
    type: 'object',
    required: ['count', 'unique_users'],
    properties: { count: { type: 'integer' }, unique_users: { type: 'integer' } },
  },
};
