// GET /metrics: rate limit → parse → cache (single flight) → rollup + raw tail → ETag/304.
import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import { problem, shuttingDownProblem } from '../../errors.js';
import {
  answerMetrics,
  parseMetricsQuery,
  PoolBusyError,
  type MetricsSources,
} from '../../metrics/answer-metrics.js';
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
      maxSeriesBuckets: config.metricsMaxSeriesBuckets,
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
        const retryAfterSeconds = config.retryAfterSeconds;
        if (err instanceof PoolBusyError) {
          const refusal =
            err.reason === 'closed'
              ? shuttingDownProblem(retryAfterSeconds)
              : problem('metrics_busy', busyDetail(err), { retryAfterSeconds });
          sendProblem(exchange, refusal, { headers });
          return;
        }
        deps.log.warn({ err: (err as Error).message }, 'metrics query failed');
        sendProblem(
          exchange,
          problem('database_unavailable', 'The metrics could not be read from the database.', {
            retryAfterSeconds,
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

function busyDetail(err: PoolBusyError): string {
  const { connections, limits } = err;
  return err.reason === 'queue_full'
    ? `All ${connections} reader connections (METRICS_POOL_SIZE) are busy and ${limits.maxWaiting} reads already wait for one (METRICS_QUEUE_MAX).`
    : `No reader connection came free within ${limits.waitMs} ms (METRICS_QUEUE_WAIT_MS); all ${connections} (METRICS_POOL_SIZE) were busy.`;
}

const groupByUnits = ['hour', 'day', 'week', 'month'];
const breakdownColumns = ['event_name', 'channel'];

const metricsOperation = {
  summary:
    'Totals, unique users, buckets in local time and breakdowns; exact, from the rollup plus the raw tail',
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
    queryParameter(
      'group_by',
      'Buckets: local calendar hours, days, weeks or months in `tz`. An hour bucket is one wall-clock hour at one UTC offset, so a repeated hour is two buckets. Without it: totals only.',
      { type: 'string', enum: groupByUnits },
    ),
    queryParameter(
      'tz',
      'IANA time zone the buckets are cut in (`America/New_York`, `Asia/Kolkata`); send `+` as `%2B`. Totals do not depend on it.',
      {
        type: 'string',
        minLength: 1,
        maxLength: 64,
        pattern: '^[A-Za-z0-9_+/-]+$',
        default: 'UTC',
      },
    ),
    queryParameter(
      'week_start',
      'The day a week bucket starts on, at 00:00 local; accepted with any group_by, used by `week`.',
      { type: 'string', enum: ['monday', 'sunday'], default: 'monday' },
    ),
    queryParameter(
      'fill',
      '`none`: only the buckets holding events; `zero`: every bucket overlapping [from, to], the empty ones with zero counts.',
      { type: 'string', enum: ['none', 'zero'], default: 'none' },
    ),
    queryParameter(
      'breakdown',
      'Adds the top `limit` values of this column by count, `other` for the rest and, with group_by, a series of buckets per top value.',
      { type: 'string', enum: breakdownColumns },
    ),
    queryParameter('limit', 'How many breakdown values; only with breakdown.', {
      type: 'integer',
      minimum: 1,
      maximum: 100,
      default: 10,
    }),
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
      ...problemResponse(['database_unavailable', 'metrics_busy', 'shutting_down']),
      headers: retryAfterHeader,
    },
  },
};

const countsRef = { $ref: '#/components/schemas/Counts' };
const bucketsOf = (description: string) => ({
  type: 'array',
  description,
  items: { $ref: '#/components/schemas/MetricsBucket' },
});
/** A breakdown value: a string, or null for the events that have no channel. */
const breakdownValue = { type: ['string', 'null'] };
const echoed = 'Only when the request gave it: the value it gave.';

const metricsSchemas = {
  MetricsAnswer: {
    type: 'object',
    required: ['totals', 'as_of', 'cached'],
    properties: {
      totals: countsRef,
      buckets: bucketsOf(
        'Only with group_by: ascending; with fill=none the buckets holding events, with fill=zero every bucket overlapping [from, to].',
      ),
      breakdown: { $ref: '#/components/schemas/MetricsBreakdown' },
      tz: { type: 'string', description: echoed },
      group_by: { type: 'string', enum: groupByUnits, description: echoed },
      from: { type: 'integer', description: echoed },
      to: { type: 'integer', description: echoed },
      as_of: {
        type: 'integer',
        description: 'Epoch ms of the database snapshot the numbers reflect.',
      },
      cached: { type: 'boolean', description: 'True when served from the in-process cache.' },
    },
  },
  MetricsBucket: {
    description: 'The events of [from, to] in one bucket (the first and last may be partial).',
    allOf: [
      countsRef,
      {
        type: 'object',
        required: ['bucket_start'],
        properties: {
          bucket_start: {
            type: 'integer',
            description:
              'Epoch s of the first instant of the bucket (local midnight, the local hour, or the instant the clock jumped), even when from is later.',
          },
        },
      },
    ],
  },
  MetricsBreakdown: {
    type: 'object',
    description: 'Only with breakdown.',
    required: ['by', 'values', 'other'],
    properties: {
      by: { type: 'string', enum: breakdownColumns },
      values: {
        type: 'array',
        description:
          'The top `limit` values by count; ties by value in code-point order, null last.',
        items: {
          allOf: [
            countsRef,
            { type: 'object', required: ['value'], properties: { value: breakdownValue } },
          ],
        },
      },
      other: {
        ...countsRef,
        description: 'Every event not in a top value; unique_users counts those events exactly.',
      },
      series: {
        type: 'array',
        description: 'Only with group_by: one per top value, in the same order.',
        items: {
          type: 'object',
          required: ['value', 'buckets'],
          properties: {
            value: breakdownValue,
            buckets: bucketsOf('As top-level buckets, for this value only.'),
          },
        },
      },
    },
  },
  Counts: {
    type: 'object',
    required: ['count', 'unique_users'],
    properties: { count: { type: 'integer' }, unique_users: { type: 'integer' } },
  },
};
