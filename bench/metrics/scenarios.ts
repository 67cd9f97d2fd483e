// The metrics bench's dataset shape and its GET /metrics scenarios: which server (uncached,
// cached, the bare-uWS ceiling), how many connections, the path of every request, and the target
// each row is held to.
import { eventNameOf, secondsPerDay, type DatasetShape } from '../lib/metrics-dataset.js';
import type { MetricsOptions } from './options.js';

export const channels = ['web', 'ios', 'android', 'email'] as const;
export const eventNameCount = 20;
export const days = 90;

export function datasetShape(events: number): DatasetShape {
  const todayMidnight = Math.floor(Date.now() / 1000 / secondsPerDay) * secondsPerDay;
  return {
    events,
    days,
    endSeconds: todayMidnight,
    eventNames: eventNameCount,
    channels,
    noChannelShare: 0.1,
    users: 100_000,
  };
}

/** The windows every scenario is built from. */
export interface Windows {
  /** First second of the data (a UTC midnight). */
  readonly start: number;
  /** The UTC midnight the data ends at; the 90-day window is [start, end - 1]. */
  readonly end: number;
}

export type ServerKind = 'uncached' | 'cached' | 'bare';

/** What a row must reach: an uncached p99, or a cached req/s share of the bare-uWS ceiling. */
export type Target = { readonly p99Ms: number } | { readonly shareOfBare: number };

/** Names that --scenarios accepts besides ids: the local-time rows and their answer checks, what
 *  the cached-vs-ceiling ratio needs, and the raw scans. */
export type ScenarioGroup = 'local-time' | 'ceiling' | 'raw';

/** A step --scenarios can name: a load scenario, a raw scan, an answer check, or the refresh. */
export interface Selectable {
  readonly id: string;
  readonly groups: readonly ScenarioGroup[];
}

/** No filter selects everything; a filter selects the steps it names by id or by group. */
export const isSelected = (filter: readonly string[] | null, step: Selectable): boolean =>
  filter === null || filter.includes(step.id) || step.groups.some((g) => filter.includes(g));

/** The timed incremental refresh after --refresh-events new events. */
export const refreshStep: Selectable = { id: 'refresh', groups: [] };

export interface Scenario extends Selectable {
  readonly label: string;
  readonly server: ServerKind;
  readonly connections: (o: MetricsOptions) => number;
  /** A path factory: called once per scenario, the result once per request. */
  readonly paths: (w: Windows) => () => string;
  readonly notes: string;
  readonly target: Target | null;
}

export const metricsPath = (params: Record<string, string | number>) =>
  `/metrics?${new URLSearchParams(
    Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]),
  ).toString()}`;

/** The uncached scenarios give every request its own cache key: single flight shares one query
 *  among concurrent requests for one key even at TTL 0. The 90-day windows start 0–86,399 s
 *  early, inside the empty day before the data, so they count exactly the same rows. */
const jitteredStart = (w: Windows, k: number) => w.start - (k % secondsPerDay);
const dayStart = (w: Windows, k: number) => w.start + (k % days) * secondsPerDay;
const lastDay = (w: Windows) => w.end - secondsPerDay;
const counter = () => {
  let k = 0;
  return () => k++;
};

const uncachedConnections = (o: MetricsOptions) => o.connections;
const cachedConnections = (o: MetricsOptions) => o.cachedConnections;

type Query = Record<string, string | number>;
type RowOptions = Partial<Pick<Scenario, 'connections' | 'target' | 'groups'>>;

/** A TTL 0 server; every request's whole query comes from its own counter value k. */
const uncachedQueries = (
  id: string,
  label: string,
  query: (w: Windows, k: number) => Query,
  notes: string,
  row: RowOptions = {},
): Scenario => ({
  id,
  label,
  server: 'uncached',
  connections: uncachedConnections,
  target: null,
  groups: [],
  ...row,
  paths: (w) => {
    const next = counter();
    return () => metricsPath(query(w, next()));
  },
  notes,
});

/** Uncached, by UTC day. */
const uncached = (
  id: string,
  label: string,
  query: (w: Windows, k: number) => Query,
  notes: string,
  row: RowOptions = {},
): Scenario =>
  uncachedQueries(id, label, (w, k) => ({ ...query(w, k), group_by: 'day' }), notes, row);

/** The default 1 s TTL; one URL for every request, by day. */
const cached = (
  id: string,
  label: string,
  query: (w: Windows) => Query,
  groups: readonly ScenarioGroup[] = [],
): Scenario => ({
  id,
  label,
  server: 'cached',
  connections: cachedConnections,
  paths: (w) => {
    const path = metricsPath({ ...query(w), group_by: 'day' });
    return () => path;
  },
  notes: 'default 1 s TTL, one URL',
  target: { shareOfBare: 0.5 },
  groups,
});

const ninetyDaysJittered = (w: Windows, k: number) => ({
  from: jitteredStart(w, k),
  to: w.end - 1,
});

export const newYork = 'America/New_York';
export const kolkata = 'Asia/Kolkata';
const localTime: readonly ScenarioGroup[] = ['local-time'];
const hourlyWindowDays = 7;

/** A local-time row over the whole 90 days: the window start jittered as ninetyDaysJittered. */
const ninetyDayRow = (id: string, label: string, params: Query, notes: string, p99Ms: number) =>
  uncachedQueries(
    id,
    label,
    (w, k) => ({ ...ninetyDaysJittered(w, k), ...params }),
    `TTL 0; start jittered into the empty day before; ${notes}`,
    { target: { p99Ms }, groups: localTime },
  );
/** What a "last 12 months" chart asks for: 13 month buckets, the first and last partial. */
const yearDays = 365;

export const scenarios: readonly Scenario[] = [
  uncached(
    'uncached-90d',
    '90 days, group_by=day, uncached',
    ninetyDaysJittered,
    'TTL 0 server; own cache key per request (window start jittered into the empty day before)',
    { target: { p99Ms: 50 } },
  ),
  uncached(
    'uncached-90d-c1',
    '90 days, group_by=day, uncached, one client',
    ninetyDaysJittered,
    'service time without queueing',
    { connections: () => 1, target: { p99Ms: 50 } },
  ),
  uncached(
    'uncached-1d',
    'one whole day, uncached',
    (w, k) => {
      const from = dayStart(w, k);
      return { from, to: from + secondsPerDay - 1 };
    },
    'TTL 0; cycles through the 90 days (rollup cells only)',
  ),
  uncached(
    'uncached-partial',
    'partial day 10:00–14:00, uncached',
    (w, k) => {
      const day = dayStart(w, k);
      return { from: day + 10 * 3600, to: day + 14 * 3600 - 1 };
    },
    'TTL 0; cycles through the 90 days (raw edge rows only)',
  ),
  uncached(
    'uncached-90d-name',
    '90 days by event_name, uncached',
    (w, k) => ({ event_name: eventNameOf(k % eventNameCount), ...ninetyDaysJittered(w, k) }),
    'TTL 0; cycles through the 20 names',
  ),
  uncached(
    'uncached-90d-name-channel',
    '90 days by event_name+channel, uncached',
    (w, k) => ({
      event_name: eventNameOf(k % eventNameCount),
      channel: channels[Math.floor(k / eventNameCount) % channels.length]!,
      ...ninetyDaysJittered(w, k),
    }),
    'TTL 0; cycles through names × channels',
  ),
  ninetyDayRow(
    'local-90d-day-new-york',
    `90 days by day in ${newYork}, uncached`,
    { tz: newYork, group_by: 'day' },
    'local days are whole UTC hours',
    50,
  ),
  ninetyDayRow(
    'local-90d-day-kolkata',
    `90 days by day in ${kolkata}, uncached`,
    { tz: kolkata, group_by: 'day' },
    'UTC+05:30, so every local midnight falls mid-hour',
    100,
  ),
  uncachedQueries(
    'local-7d-hour-new-york',
    `${hourlyWindowDays} days by hour in ${newYork}, uncached`,
    (w, k) => {
      const starts = (days - hourlyWindowDays) * 24;
      const from = w.start + (k % starts) * 3600;
      return {
        from,
        to: from + hourlyWindowDays * secondsPerDay - 1,
        tz: newYork,
        group_by: 'hour',
      };
    },
    'TTL 0; cycles through every whole-hour start inside the 90 days (168 hour buckets)',
    { target: { p99Ms: 50 }, groups: localTime },
  ),
  uncachedQueries(
    'local-12mo-month-new-york',
    `12 months by month in ${newYork}, uncached`,
    (w, k) => ({
      from: w.end - yearDays * secondsPerDay - (k % secondsPerDay),
      to: w.end - 1,
      tz: newYork,
      group_by: 'month',
    }),
    `TTL 0; the ${yearDays} days ending with the data, start jittered into the empty months before it`,
    { target: { p99Ms: 50 }, groups: localTime },
  ),
  ninetyDayRow(
    'local-90d-week-new-york',
    `90 days by week in ${newYork}, uncached`,
    { tz: newYork, group_by: 'week' },
    'weeks start Monday',
    50,
  ),
  ninetyDayRow(
    'breakdown-90d-name',
    '90 days, breakdown=event_name&limit=10, uncached',
    { breakdown: 'event_name', limit: 10 },
    `UTC; ${eventNameCount} names, so other holds ${eventNameCount - 10}`,
    100,
  ),
  ninetyDayRow(
    'breakdown-90d-name-day',
    '90 days by day, breakdown=event_name&limit=10, uncached',
    { group_by: 'day', breakdown: 'event_name', limit: 10 },
    'UTC; a 90-day series per top name',
    150,
  ),
  cached('cached-90d', '90 days, group_by=day, cached', (w) => ({ from: w.start, to: w.end - 1 }), [
    'ceiling',
  ]),
  cached(
    'cached-90d-new-york',
    `90 days by day in ${newYork}, cached`,
    (w) => ({
      from: w.start,
      to: w.end - 1,
      tz: newYork,
    }),
    ['ceiling'],
  ),
  cached('cached-1d', 'one whole day, cached', (w) => ({
    from: lastDay(w),
    to: lastDay(w) + secondsPerDay - 1,
  })),
  cached('cached-partial', 'partial day 10:00–14:00, cached', (w) => ({
    from: lastDay(w) + 10 * 3600,
    to: lastDay(w) + 14 * 3600 - 1,
  })),
  cached('cached-90d-name', '90 days by event_name, cached', (w) => ({
    event_name: eventNameOf(0),
    from: w.start,
    to: w.end - 1,
  })),
  cached('cached-90d-name-channel', '90 days by event_name+channel, cached', (w) => ({
    event_name: eventNameOf(0),
    channel: 'web',
    from: w.start,
    to: w.end - 1,
  })),
  {
    id: 'bare-uws-before',
    label: 'bare uWS ceiling, before the cached scenarios',
    server: 'bare',
    connections: cachedConnections,
    paths: () => () => '/metrics',
    notes: "constant body: the cached 90-day answer's bytes",
    target: null,
    groups: ['ceiling'],
  },
  {
    id: 'bare-uws-after',
    label: 'bare uWS ceiling, after the cached scenarios',
    server: 'bare',
    connections: cachedConnections,
    paths: () => () => '/metrics',
    notes: 'the same again: the machine drifts within minutes',
    target: null,
    groups: ['ceiling'],
  },
];
