// The raw scans of one run and whether /metrics answers what the raw rows say: the 90-day answer
// by UTC day against the timed scans (the Go MVP's queries), and by local day in two zones against
// date_trunc over the raw rows. Both run after the run's new events are absorbed, through a fresh
// server, so the answer and the scan see the same rows.
import { eventNameOf } from '../lib/metrics-dataset.js';
import { progress } from '../lib/progress.js';
import {
  openRawScanner,
  type RawDay,
  type RawTotals,
  type RawWindow,
} from '../lib/raw-metrics-scan.js';
import { rawQueries } from './raw-queries.js';
import type { Correctness, RawRun } from './results.js';
import {
  isSelected,
  kolkata,
  metricsPath,
  newYork,
  type Selectable,
  type Windows,
} from './scenarios.js';

export interface LocalDayCheck extends Selectable {
  readonly label: string;
  readonly tz: string;
}

export const localDayChecks: readonly LocalDayCheck[] = [newYork, kolkata].map((tz) => ({
  id: `check-${tz.split('/')[1]!.toLowerCase().replace(/_/g, '-')}-days`,
  label: `90 days by day in ${tz}`,
  tz,
  groups: ['local-time', 'raw'],
}));

export interface CheckContext {
  readonly label: string;
  readonly filter: readonly string[] | null;
  readonly rawRepeats: number;
  readonly windows: Windows;
  readonly dsn: string;
  /** Runs `read` against a fresh uncached server and stops it. */
  readonly withServer: <T>(read: (baseUrl: string) => Promise<T>) => Promise<T>;
}

interface Truth {
  readonly id: string;
  readonly label: string;
  readonly path: string;
  readonly totals: RawTotals;
  readonly days: RawDay[];
}

export async function scanAndCheck(
  context: CheckContext,
): Promise<{ raw: RawRun[]; checks: Correctness[] }> {
  const { label, filter, windows } = context;
  const queries = rawQueries.filter((q) => isSelected(filter, q));
  const localChecks = localDayChecks.filter((c) => isSelected(filter, c));
  const raw: RawRun[] = [];
  const truths: Truth[] = [];
  if (queries.length === 0 && localChecks.length === 0) return { raw, checks: [] };
  const window: RawWindow = { from: windows.start, to: windows.end - 1, eventName: null };
  const dayPath = (tz: string | null) =>
    metricsPath({ from: window.from, to: window.to, ...(tz ? { tz } : {}), group_by: 'day' });
  const scanner = await openRawScanner(context.dsn);
  try {
    let rawTotals: RawTotals | undefined;
    let rawDays: RawDay[] | undefined;
    for (const query of queries) {
      const samplesMs: number[] = [];
      for (let i = 0; i < context.rawRepeats; i++) {
        if (query.id === 'raw-90d-per-day') {
          const { ms, days: d } = await scanner.perDay(window);
          samplesMs.push(ms);
          rawDays = d;
        } else if (query.id === 'raw-90d-name-totals') {
          samplesMs.push((await scanner.totals({ ...window, eventName: eventNameOf(0) })).ms);
        } else {
          const { ms, totals } = await scanner.totals(window);
          samplesMs.push(ms);
          rawTotals = totals;
        }
        progress(`${label} ${query.id}: ${(samplesMs.at(-1)! / 1000).toFixed(2)} s`);
      }
      raw.push({ query: query.id, samplesMs });
    }
    if (rawTotals && rawDays)
      truths.push({
        id: 'check-utc-days',
        label: '90 days by UTC day',
        path: dayPath(null),
        totals: rawTotals,
        days: rawDays,
      });
    for (const check of localChecks) {
      const { ms, totals, days } = await scanner.perLocalDay(window, check.tz);
      progress(`${label} ${check.id} raw scan: ${(ms / 1000).toFixed(2)} s`);
      truths.push({ id: check.id, label: check.label, path: dayPath(check.tz), totals, days });
    }
  } finally {
    await scanner.close();
  }
  if (truths.length === 0) return { raw, checks: [] };
  const checks = await context.withServer(async (baseUrl) => {
    const done: Correctness[] = [];
    for (const truth of truths) {
      // A wrong status fails this check, not the whole bench hours into a run.
      const c = await fetchMetrics(baseUrl, truth.path).then(
        ({ answer }) => compare(truth, answer),
        (err: unknown) => failed(truth, err instanceof Error ? err.message : String(err)),
      );
      progress(
        `${label} ${truth.id}: ${c.error ?? `/metrics ${c.metricsTotals?.count}/${c.metricsTotals?.unique_users}`} vs raw ${c.rawTotals.count}/${c.rawTotals.uniqueUsers}; ${c.bucketMismatches} of ${c.bucketsCompared} day buckets differ`,
      );
      done.push(c);
    }
    return done;
  });
  return { raw, checks };
}

interface MetricsAnswer {
  totals: { count: number; unique_users: number };
  buckets?: { bucket_start: number; count: number; unique_users: number }[];
}

export async function fetchMetrics(
  baseUrl: string,
  path: string,
): Promise<{ answer: MetricsAnswer; body: string }> {
  const res = await fetch(new URL(path, baseUrl), { signal: AbortSignal.timeout(30_000) });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${body}`);
  return { answer: JSON.parse(body) as MetricsAnswer, body };
}

function compare(truth: Truth, answer: MetricsAnswer): Correctness {
  const buckets = new Map((answer.buckets ?? []).map((b) => [b.bucket_start, b]));
  let mismatches = Math.abs(buckets.size - truth.days.length);
  for (const day of truth.days) {
    const b = buckets.get(day.bucketStart);
    if (!b || b.count !== day.count || b.unique_users !== day.uniqueUsers) mismatches++;
  }
  return {
    check: truth.id,
    label: truth.label,
    error: null,
    metricsTotals: answer.totals,
    rawTotals: truth.totals,
    totalsEqual:
      answer.totals.count === truth.totals.count &&
      answer.totals.unique_users === truth.totals.uniqueUsers,
    bucketsCompared: truth.days.length,
    bucketMismatches: mismatches,
  };
}

function failed(truth: Truth, error: string): Correctness {
  return {
    check: truth.id,
    label: truth.label,
    error,
    metricsTotals: null,
    rawTotals: truth.totals,
    totalsEqual: false,
    bucketsCompared: truth.days.length,
    bucketMismatches: truth.days.length,
  };
}
