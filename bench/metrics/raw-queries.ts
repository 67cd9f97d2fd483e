// The Go MVP's way of answering /metrics (count + count(DISTINCT) over the raw rows), timed on
// the same data (bench/lib/raw-metrics-scan.ts runs them).
import type { Selectable } from './scenarios.js';

export type RawQueryId = 'raw-90d-totals' | 'raw-90d-name-totals' | 'raw-90d-per-day';
export const rawQueries: readonly (Selectable & {
  id: RawQueryId;
  label: string;
  notes: string;
})[] = [
  {
    id: 'raw-90d-totals',
    label: "seed's raw scan: 90-day count + count(DISTINCT)",
    notes: 'direct pg, sequential',
    groups: ['raw'],
  },
  {
    id: 'raw-90d-name-totals',
    label: "seed's raw scan: 90 days, one event_name",
    notes: 'direct pg, sequential',
    groups: ['raw'],
  },
  {
    id: 'raw-90d-per-day',
    label: "seed's raw scan: 90 days GROUP BY day",
    notes: 'direct pg, sequential',
    groups: ['raw'],
  },
];
