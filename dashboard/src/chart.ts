// The time-series chart: uPlot on a canvas, events and unique users per bucket, its time axis in
// the view's zone (uPlot draws in the browser's zone unless given tzDate).
import uPlot from 'uplot';
import type { Bucket } from './metrics-client.js';

const height = 300;
/** Counts are whole numbers: the y axis never ticks at 0.5. */
const countSteps = Array.from(
  { length: 30 },
  (_, i) => [1, 2, 5][i % 3]! * 10 ** Math.floor(i / 3),
);

export function createChart(container: HTMLElement) {
  let plot: uPlot | null = null;
  new ResizeObserver(() => plot?.setSize({ width: container.clientWidth, height })).observe(
    container,
  );
  return function drawChart(buckets: readonly Bucket[], tz: string): void {
    plot?.destroy();
    const data: uPlot.AlignedData = [
      buckets.map((b) => b.bucket_start),
      buckets.map((b) => b.count),
      buckets.map((b) => b.unique_users),
    ];
    plot = new uPlot(
      {
        width: container.clientWidth,
        height,
        tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), tz),
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.05] } },
        series: [
          {},
          { label: 'Events', stroke: '#1d5fbf', fill: 'rgba(29, 95, 191, 0.08)', width: 2 },
          { label: 'Unique users', stroke: '#a34400', width: 2 },
        ],
        axes: [{}, { size: 60, incrs: countSteps }],
      },
      data,
      container,
    );
  };
}
