// The rollup's two kinds of cells (migrations 0002 and 0003): day cells by day for whole days,
// hour cells by hour for the whole hours of partial days. Same grains and columns otherwise.
export const rollupSpans = {
  day: { table: 'rollup_cells', unit: 'day' },
  hour: { table: 'rollup_hour_cells', unit: 'hour' },
} as const;

export type RollupSpan = keyof typeof rollupSpans;
