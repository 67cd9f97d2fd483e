// What the page shows, kept in its own query string so a view can be shared and a reload restores
// it: /dashboard?range=7d&group_by=hour&tz=Europe/Berlin&event_name=…&channel=…&from=…&to=…

export const granularities = ['hour', 'day', 'week', 'month'] as const;
export type Granularity = (typeof granularities)[number];

/** Range presets → their length in seconds. */
export const presetSeconds = {
  '1h': 3600,
  '24h': 86_400,
  '7d': 7 * 86_400,
  '30d': 30 * 86_400,
  '90d': 90 * 86_400,
} as const;
export type Preset = keyof typeof presetSeconds;

export interface ViewState {
  readonly range: Preset | 'custom';
  /** Epoch seconds; only with range=custom. */
  readonly from?: number;
  readonly to?: number;
  readonly groupBy: Granularity;
  readonly tz: string;
  readonly eventName: string;
  readonly channel: string;
}

const defaultGranularity: Record<Preset, Granularity> = {
  '1h': 'hour',
  '24h': 'hour',
  '7d': 'hour',
  '30d': 'day',
  '90d': 'day',
};

export function browserTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

function isPreset(value: string): value is Preset {
  return Object.hasOwn(presetSeconds, value);
}

function epochSeconds(value: string | null): number | undefined {
  if (value === null || !/^\d{1,12}$/.test(value)) return undefined;
  return Number(value);
}

/** Reads the state from a query string; anything missing or unusable takes its default. */
export function readViewState(search: string): ViewState {
  const q = new URLSearchParams(search);
  const rangeParam = q.get('range') ?? '';
  const from = epochSeconds(q.get('from'));
  const to = epochSeconds(q.get('to'));
  const custom = rangeParam === 'custom' && from !== undefined && to !== undefined && from <= to;
  const range: ViewState['range'] = custom ? 'custom' : isPreset(rangeParam) ? rangeParam : '24h';
  const groupByParam = q.get('group_by') ?? '';
  const groupBy = (granularities as readonly string[]).includes(groupByParam)
    ? (groupByParam as Granularity)
    : range === 'custom'
      ? 'day'
      : defaultGranularity[range];
  return {
    range,
    ...(custom ? { from, to } : {}),
    groupBy,
    tz: q.get('tz') || browserTimeZone(),
    eventName: q.get('event_name') ?? '',
    channel: q.get('channel') ?? '',
  };
}

export function writeViewState(state: ViewState): string {
  const q = new URLSearchParams({ range: state.range });
  if (state.range === 'custom') {
    q.set('from', String(state.from));
    q.set('to', String(state.to));
  }
  q.set('group_by', state.groupBy);
  q.set('tz', state.tz);
  if (state.eventName) q.set('event_name', state.eventName);
  if (state.channel) q.set('channel', state.channel);
  return `?${q.toString()}`;
}

/** The default granularity of a preset, for when the range changes. */
export function granularityFor(range: Preset): Granularity {
  return defaultGranularity[range];
}

/** The window the view covers now: [to − preset, to], or the custom bounds. */
export function windowOf(state: ViewState, nowSeconds: number): { from: number; to: number } {
  if (state.range === 'custom') return { from: state.from!, to: state.to! };
  return { from: nowSeconds - presetSeconds[state.range], to: nowSeconds };
}
