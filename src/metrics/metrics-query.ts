// GET /metrics's query string → the question: window and filters (shared with export), local
// buckets, fill and breakdown. Pure; the bucket boundaries are computed here because their number
// is a limit the request is refused on.
import type { Problem } from '../errors.js';
import type { MetricsWindow } from '../sql/read-metrics.js';
import {
  bucketBoundaries,
  canonicalTimeZone,
  type BucketRule,
  type BucketUnit,
} from './local-time.js';
import { parseTimeWindow, type AddError } from './time-window.js';

export type BreakdownColumn = 'event_name' | 'channel';

export interface MetricsQuery extends MetricsWindow {
  /** With group_by: the local buckets and the instants they begin at (one more: the last's end). */
  readonly buckets: { readonly rule: BucketRule; readonly boundaries: readonly number[] } | null;
  /** Every bucket overlapping the window is answered, empty ones as zeros. */
  readonly fillZero: boolean;
  readonly breakdown: { readonly by: BreakdownColumn; readonly limit: number } | null;
  /** The parameters the answer repeats when the request gave them. */
  readonly echo: Readonly<Record<string, string | number>>;
}

export interface MetricsLimits {
  readonly maxWindowDays: number;
  readonly maxBuckets: number;
  /** Buckets in one answer, each breakdown series' included. */
  readonly maxSeriesBuckets: number;
}

const metricsParameters = new Set([
  'event_name',
  'channel',
  'from',
  'to',
  'group_by',
  'tz',
  'week_start',
  'fill',
  'breakdown',
  'limit',
]);
const units: readonly BucketUnit[] = ['hour', 'day', 'week', 'month'];
const breakdownColumns: readonly BreakdownColumn[] = ['event_name', 'channel'];
const defaultLimit = 10;
const maxLimit = 100;
// Names like America/Argentina/ComodRivadavia, Etc/GMT+10: one character class, so linear.
const zoneName = /^[A-Za-z0-9_+/-]{1,64}$/;

function oneOf<T extends string>(
  params: URLSearchParams,
  name: string,
  allowed: readonly T[],
  add: AddError,
): T | null {
  const raw = params.get(name);
  if (raw === null) return null;
  if ((allowed as readonly string[]).includes(raw)) return raw as T;
  add(name, `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}`);
  return null;
}

export function parseMetricsQuery(
  rawQuery: string,
  nowSeconds: number,
  limits: MetricsLimits,
): { ok: true; query: MetricsQuery } | { ok: false; problem: Problem } {
  return parseTimeWindow(
    rawQuery,
    nowSeconds,
    limits.maxWindowDays,
    metricsParameters,
    (params, window, add) => {
      const unit = oneOf(params, 'group_by', units, add);
      const weekStart = oneOf(params, 'week_start', ['monday', 'sunday'] as const, add);
      const fill = oneOf(params, 'fill', ['none', 'zero'] as const, add);
      const by = oneOf(params, 'breakdown', breakdownColumns, add);
      const tz = params.get('tz');
      const zone = tz === null ? 'UTC' : zoneName.test(tz) ? canonicalTimeZone(tz) : undefined;
      if (zone === undefined) add('tz', 'must be an IANA time zone name, such as America/New_York');
      const rawLimit = params.get('limit');
      let limit = defaultLimit;
      if (rawLimit !== null) {
        limit = /^\d{1,3}$/.test(rawLimit) ? Number(rawLimit) : 0;
        if (limit < 1 || limit > maxLimit) add('limit', `must be an integer from 1 to ${maxLimit}`);
        else if (params.get('breakdown') === null) add('limit', 'applies only with breakdown');
      }
      let buckets: MetricsQuery['buckets'] = null;
      if (unit !== null && window !== undefined && zone !== undefined) {
        const rule: BucketRule = { unit, tz: zone, weekStart: weekStart ?? 'monday' };
        const boundaries = bucketBoundaries(rule, window.from, window.to + 1, limits.maxBuckets);
        const count = (boundaries?.length ?? 0) - 1;
        if (boundaries === undefined) {
          add(
            'group_by',
            `the window holds more than ${limits.maxBuckets} buckets (METRICS_MAX_BUCKETS)`,
          );
        } else if (by !== null && count * (1 + limit) > limits.maxSeriesBuckets) {
          // Each top value repeats the buckets in its series: the answer's size is their product.
          add(
            'limit',
            `${count} buckets × (1 + limit) must not exceed ${limits.maxSeriesBuckets} (METRICS_MAX_SERIES_BUCKETS)`,
          );
        } else buckets = { rule, boundaries };
      }
      const echo: Record<string, string | number> = {};
      if (tz !== null) echo.tz = tz;
      if (unit !== null) echo.group_by = unit;
      if (params.get('from') !== null) echo.from = window?.from ?? 0;
      if (params.get('to') !== null) echo.to = window?.to ?? 0;
      return {
        buckets,
        fillZero: fill === 'zero',
        breakdown: by === null ? null : { by, limit },
        echo,
      };
    },
  );
}

/** The cache key: every parameter that changes the answer, whatever their order and spelling. */
export function metricsCacheKey(q: MetricsQuery, projectId: number): string {
  const rule = q.buckets?.rule;
  return JSON.stringify([
    projectId,
    q.from,
    q.to,
    q.eventName,
    q.channel,
    rule ? [rule.unit, rule.tz, rule.unit === 'week' ? rule.weekStart : ''] : null,
    q.fillZero,
    q.breakdown,
    q.echo,
  ]);
}
