// The metrics bench's scenarios ask the questions the speed targets are about, each request with
// its own cache key where the row is uncached, and --scenarios runs only what it names.
import { describe, expect, it } from 'vitest';
import { localDayChecks } from '../../bench/metrics/answer-checks.js';
import { parseMetricsOptions } from '../../bench/metrics/options.js';
import { rawQueries } from '../../bench/metrics/raw-queries.js';
import {
  isSelected,
  refreshStep,
  scenarios,
  type Scenario,
  type Windows,
} from '../../bench/metrics/scenarios.js';

const day = 86_400;
const end = Date.UTC(2026, 11, 3) / 1000;
const windows: Windows = { start: end - 90 * day, end };

const scenario = (id: string): Scenario => {
  const found = scenarios.find((s) => s.id === id);
  if (!found) throw new Error(`no scenario ${id}`);
  return found;
};
const queriesOf = (id: string, n: number) => {
  const next = scenario(id).paths(windows);
  return Array.from({ length: n }, () => new URL(next(), 'http://bench').searchParams);
};
const paramsOf = (q: URLSearchParams) =>
  Object.fromEntries([...q].filter(([k]) => k !== 'from' && k !== 'to'));

const localTimeRows = {
  'local-90d-day-new-york': [{ tz: 'America/New_York', group_by: 'day' }, 50],
  'local-90d-day-kolkata': [{ tz: 'Asia/Kolkata', group_by: 'day' }, 100],
  'local-7d-hour-new-york': [{ tz: 'America/New_York', group_by: 'hour' }, 50],
  'local-12mo-month-new-york': [{ tz: 'America/New_York', group_by: 'month' }, 50],
  'local-90d-week-new-york': [{ tz: 'America/New_York', group_by: 'week' }, 50],
  'breakdown-90d-name': [{ breakdown: 'event_name', limit: '10' }, 100],
  'breakdown-90d-name-day': [{ group_by: 'day', breakdown: 'event_name', limit: '10' }, 150],
} as const;

describe('metrics bench scenarios', () => {
  it('asks each local-time row its question, uncached at the uncached connections, against its p99 target', () => {
    const asked = Object.keys(localTimeRows).map((id) => {
      const s = scenario(id);
      return [id, [paramsOf(queriesOf(id, 1)[0]!), s.target], s.server];
    });
    expect(asked).toEqual(
      Object.entries(localTimeRows).map(([id, [params, p99Ms]]) => [
        id,
        [params, { p99Ms }],
        'uncached',
      ]),
    );
  });

  it('gives every request of a local-time row its own query string', () => {
    const repeats = Object.keys(localTimeRows).map((id) => [
      id,
      1000 - new Set(queriesOf(id, 1000).map(String)).size,
    ]);
    expect(repeats.filter(([, n]) => n !== 0)).toEqual([]);
  });

  it('starts the 90-day local and breakdown windows only inside the empty day before the data', () => {
    const ids = Object.keys(localTimeRows).filter((id) => id.includes('90d'));
    const outside = ids.flatMap((id) =>
      queriesOf(id, 3 * day)
        .filter((q) => {
          const from = Number(q.get('from'));
          return (
            from > windows.start || from <= windows.start - day || Number(q.get('to')) !== end - 1
          );
        })
        .map((q) => `${id}: ${String(q)}`),
    );
    expect(outside).toEqual([]);
  });

  it('cuts the hourly rows into 7-day windows of whole hours inside the data', () => {
    const bad = queriesOf('local-7d-hour-new-york', 5000).filter((q) => {
      const from = Number(q.get('from'));
      const to = Number(q.get('to'));
      return from % 3600 !== 0 || to - from + 1 !== 7 * day || from < windows.start || to >= end;
    });
    expect(bad.map(String)).toEqual([]);
  });

  it('runs only the local-time rows and their answer checks under --scenarios local-time', () => {
    const { scenarios: filter } = parseMetricsOptions(['--scenarios', 'local-time']);
    const steps = [...scenarios, ...rawQueries, ...localDayChecks, refreshStep];
    expect(steps.filter((s) => isSelected(filter, s)).map((s) => s.id)).toEqual([
      ...Object.keys(localTimeRows),
      'check-new-york-days',
      'check-kolkata-days',
    ]);
  });
});
