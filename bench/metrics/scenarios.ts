// The metrics bench's dataset shape and its GET /metrics scenarios: which server (uncached,
// cached, the bare-uWS ceiling), how many connections, and the path of every request.
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

export interface Scenario {
  readonly id: string;
  readonly label: string;
  readonly server: ServerKind;
  readonly connections: (o: MetricsOptions) => number;
  /** A path factory: called once per scenario, the result once per request. */
  readonly paths: (w: Windows) => () => string;
  readonly notes: string;
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

/** A TTL 0 server; every request's query comes from its own counter value k. */
const uncached = (
  id: string,
  label: string,
  query: (w: Windows, k: number) => Query,
  notes: string,
  connections = uncachedConnections,
): Scenario => ({
  id,
  label,
  server: 'uncached',
  connections,
  paths: (w) => {
    const next = counter();
    return () => metricsPath({ ...query(w, next()), group_by: 'day' });
  },
  notes,
});

/** The default 1 s TTL; one URL for every request. */
const cached = (id: string, label: string, query: (w: Windows) => Query): Scenario => ({
  id,
  label,
  server: 'cached',
  connections: cachedConnections,
  paths: (w) => {
    const path = metricsPath({ ...query(w), group_by: 'day' });
    return () => path;
  },
  notes: 'default 1 s TTL, one URL',
});

const ninetyDaysJittered = (w: Windows, k: number) => ({
  from: jitteredStart(w, k),
  to: w.end - 1,
});

export const scenarios: readonly Scenario[] = [
  uncached(
    'uncached-90d',
    '90 days, group_by=day, uncached',
    ninetyDaysJittered,
    'TTL 0 server; own cache key per request (window start jittered into the empty day before)',
  ),
  uncached(
    'uncached-90d-c1',
    '90 days, group_by=day, uncached, one client',
    ninetyDaysJittered,
    'service time without queueing',
    () => 1,
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
  cached('cached-90d', '90 days, group_by=day, cached', (w) => ({
    from: w.start,
    to: w.end - 1,
  })),
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
  },
  {
    id: 'bare-uws-after',
    label: 'bare uWS ceiling, after the cached scenarios',
    server: 'bare',
    connections: cachedConnections,
    paths: () => () => '/metrics',
    notes: 'the same again: the machine drifts within minutes',
  },
];
