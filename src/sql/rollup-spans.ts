// The rollup's shape, read by the refresher that writes it and the reader that answers from it.
// Spans (migrations 0002 and 0003): day cells by day for whole days, hour cells by hour for the
// whole hours of partial days. Grains: which filters a cell is keyed by, so any query reads exactly
// one cell per span; events without a channel are in no channel grain, as no channel filter
// matches them, but in grains of their own so a breakdown by channel counts them (migration 0007).
export const rollupSpans = {
  day: { table: 'rollup_cells', unit: 'day', seconds: 86_400 },
  hour: { table: 'rollup_hour_cells', unit: 'hour', seconds: 3600 },
} as const;

export type RollupSpan = keyof typeof rollupSpans;

export const secondsPerDay = rollupSpans.day.seconds;
export const secondsPerHour = rollupSpans.hour.seconds;
export const hoursPerDay = secondsPerDay / secondsPerHour;

export interface RollupGrain {
  /** The rollup tables' grain column. */
  readonly code: number;
  /** Keyed by event_name; otherwise the cell's event_name is ''. */
  readonly byEventName: boolean;
  /** Keyed by channel; otherwise the cell's channel is ''. */
  readonly byChannel: boolean;
  /** Only events with no channel (channel ''). */
  readonly channelIsNull: boolean;
}

/** In code order: the refresher writes a row's cells in this order. */
export const rollupGrains: readonly RollupGrain[] = [
  { code: 0, byEventName: false, byChannel: false, channelIsNull: false },
  { code: 1, byEventName: true, byChannel: false, channelIsNull: false },
  { code: 2, byEventName: false, byChannel: true, channelIsNull: false },
  { code: 3, byEventName: true, byChannel: true, channelIsNull: false },
  { code: 4, byEventName: false, byChannel: false, channelIsNull: true },
  { code: 5, byEventName: true, byChannel: false, channelIsNull: true },
];

/** The grain whose cells serve exactly this filter combination. */
export function rollupGrainFor(
  byEventName: boolean,
  byChannel: boolean,
  channelIsNull = false,
): RollupGrain {
  return rollupGrains.find(
    (g) =>
      g.byEventName === byEventName &&
      g.byChannel === byChannel &&
      g.channelIsNull === channelIsNull,
  )!;
}
