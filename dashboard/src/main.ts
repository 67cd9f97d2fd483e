// The dashboard page: filters ⇄ URL, three /metrics requests per view (the series with totals, the
// top event names, the top channels), the chart and its table, and the live panel.
import { createChart } from './chart.js';
import { createLiveFeed } from './live-feed.js';
import { createMetricsClient, type MetricsResult } from './metrics-client.js';
import { createKeyPrompt } from './read-key.js';
import { bucketLabel, showBreakdown, showSeriesTable, showTotals } from './tables.js';
import {
  browserTimeZone,
  granularityFor,
  presetSeconds,
  readViewState,
  windowOf,
  writeViewState,
  type Granularity,
  type ViewState,
} from './view-state.js';

const breakdownLimit = '10';
const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const form = byId<HTMLFormElement>('filters');
const range = byId<HTMLSelectElement>('range');
const from = byId<HTMLInputElement>('from');
const to = byId<HTMLInputElement>('to');
const groupBy = byId<HTMLSelectElement>('group-by');
const tz = byId<HTMLSelectElement>('tz');
const eventName = byId<HTMLInputElement>('event-name');
const channel = byId<HTMLInputElement>('channel');
const status = byId('status');

const prompt = createKeyPrompt();
const fetchMetrics = createMetricsClient(prompt);
const drawChart = createChart(byId('chart'));
const followLive = createLiveFeed(prompt);
let shown = 0;

/** datetime-local values are the browser's wall time; the URL keeps epoch seconds. */
function toLocalInput(seconds: number): string {
  const d = new Date(seconds * 1000);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 19);
}
function fromLocalInput(value: string): number | undefined {
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}

function fillTimeZones(current: string): void {
  const zones = new Set(['UTC', browserTimeZone(), current, ...Intl.supportedValuesOf('timeZone')]);
  tz.replaceChildren(
    ...[...zones]
      .sort()
      .map((zone) =>
        Object.assign(document.createElement('option'), { value: zone, textContent: zone }),
      ),
  );
}

function showState(state: ViewState, nowSeconds: number): void {
  range.value = state.range;
  const custom = state.range === 'custom';
  byId('from-label').hidden = !custom;
  byId('to-label').hidden = !custom;
  const span = windowOf(state, nowSeconds);
  from.value = toLocalInput(span.from);
  to.value = toLocalInput(span.to);
  groupBy.value = state.groupBy;
  if (![...tz.options].some((o) => o.value === state.tz)) fillTimeZones(state.tz);
  tz.value = state.tz;
  eventName.value = state.eventName;
  channel.value = state.channel;
}

/** The state the controls describe; a changed preset brings its own granularity. */
function stateFromControls(previous: ViewState, changed: EventTarget | null): ViewState {
  const rangeValue = range.value as ViewState['range'];
  const custom = rangeValue === 'custom';
  const fromSeconds = fromLocalInput(from.value);
  const toSeconds = fromLocalInput(to.value);
  const customWindow =
    custom && fromSeconds !== undefined && toSeconds !== undefined
      ? { from: Math.min(fromSeconds, toSeconds), to: Math.max(fromSeconds, toSeconds) }
      : {};
  return {
    range: custom && customWindow.from === undefined ? previous.range : rangeValue,
    ...customWindow,
    groupBy:
      changed === range && !custom ? granularityFor(rangeValue) : (groupBy.value as Granularity),
    tz: tz.value,
    eventName: eventName.value.trim(),
    channel: channel.value.trim(),
  };
}

async function show(state: ViewState): Promise<void> {
  const view = ++shown;
  // `loaded` catching up with `shown` tells a test (and a bench) the page has settled.
  document.body.dataset.shown = String(view);
  const nowSeconds = Math.floor(Date.now() / 1000);
  showState(state, nowSeconds);
  const span = windowOf(state, nowSeconds);
  const base = new URLSearchParams({ from: String(span.from), to: String(span.to) });
  if (state.eventName) base.set('event_name', state.eventName);
  if (state.channel) base.set('channel', state.channel);
  const withParams = (extra: Record<string, string>) => {
    const params = new URLSearchParams(base);
    for (const [name, value] of Object.entries(extra)) params.set(name, value);
    return params;
  };
  status.textContent = 'loading…';
  byId('window').textContent =
    `${bucketLabel(state.tz, true)(span.from)} – ${bucketLabel(state.tz, true)(span.to)} (${state.tz})`;
  const preset = state.range === 'custom' ? null : state.range;
  followLive({
    windowSeconds: preset === null ? presetSeconds['24h'] : presetSeconds[preset],
    windowLabel: `${preset === null ? 'Last 24 hours' : range.selectedOptions[0]!.textContent}, live`,
    eventName: state.eventName,
    channel: state.channel,
    tz: state.tz,
    // The live totals count the same window moved to now: newer than the series, so they win.
    onTotals: (totals) => {
      if (view === shown && preset !== null) showTotals(totals);
    },
  });
  const [series, byEventName, byChannel] = await Promise.all([
    fetchMetrics(withParams({ group_by: state.groupBy, tz: state.tz, fill: 'zero' })),
    fetchMetrics(withParams({ breakdown: 'event_name', limit: breakdownLimit })),
    fetchMetrics(withParams({ breakdown: 'channel', limit: breakdownLimit })),
  ]);
  if (view !== shown) return;
  const failed = [series, byEventName, byChannel].find(
    (r): r is Extract<MetricsResult, { ok: false }> => !r.ok,
  );
  status.textContent = failed ? `Could not load metrics: ${failed.message}` : '';
  if (series.ok) {
    const buckets = series.answer.buckets ?? [];
    showTotals(series.answer.totals);
    drawChart(buckets, state.tz);
    showSeriesTable(buckets, bucketLabel(state.tz, state.groupBy === 'hour'));
  }
  for (const [result, table, list] of [
    [byEventName, 'by-event-name', 'event-names'],
    [byChannel, 'by-channel', 'channels'],
  ] as const) {
    if (result.ok && result.answer.breakdown)
      showBreakdown(table, list, result.answer.breakdown.values, result.answer.breakdown.other);
  }
  document.body.dataset.loaded = String(view);
  // What bench/dashboard.ts times: from navigation start to the numbers and the chart on screen.
  performance.mark('pulse:drawn');
}

let current = readViewState(location.search);
fillTimeZones(current.tz);
history.replaceState(null, '', writeViewState(current));

function apply(changed: EventTarget | null): void {
  const next = stateFromControls(current, changed);
  const search = writeViewState(next);
  if (search !== location.search) history.pushState(null, '', search);
  current = next;
  void show(current);
}

// Selects apply as soon as they change; text and date fields on Enter or the Apply button (a
// date field fires change at every part typed).
form.addEventListener('change', (event) => {
  if (event.target instanceof HTMLSelectElement) apply(event.target);
});
form.addEventListener('submit', (event) => {
  event.preventDefault();
  apply(null);
});
window.addEventListener('popstate', () => {
  current = readViewState(location.search);
  void show(current);
});
void show(current);
