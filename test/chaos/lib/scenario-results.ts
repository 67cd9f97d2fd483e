// Every chaos scenario writes its figures to test-results/<name>.json;
// `npm run reliability:report` turns the latest set into the table in docs/RELIABILITY.md.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { OracleVerdict, OutcomeLog } from '../../helpers/load.js';

export const resultsDir = fileURLToPath(new URL('../../../test-results/', import.meta.url));

export interface ScenarioFigures {
  readonly scenario: string;
  readonly started_at: string;
  readonly duration_s: number;
  readonly requests: {
    readonly sent: number;
    readonly by_status: Record<string, number>;
    readonly net_errors: number;
  };
  readonly events: { readonly acked: number; readonly failed: number; readonly in_doubt: number };
  readonly lost: number;
  readonly phantom: number;
  readonly leaked: number;
  readonly duplicates: number;
  readonly deadlocks: number;
  readonly latency_ms: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly recovery_ms: readonly number[];
  readonly rss_mb: { readonly start: number; readonly end: number; readonly max: number };
  /** Anything scenario-specific (e.g. slope per minute, leftover connections). */
  readonly extra: Record<string, unknown>;
  readonly pass: boolean;
  readonly failures: readonly string[];
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** What the oracle found, as failure lines; every scenario's figures start with them. */
function verdictFailures(verdict: OracleVerdict): string[] {
  return [
    ...(verdict.lostAcked.length > 0
      ? [`${verdict.lostAcked.length} acknowledged events lost`]
      : []),
    ...(verdict.phantom.length > 0 ? [`${verdict.phantom.length} phantom events`] : []),
    ...(verdict.leakedRejected.length > 0
      ? [`${verdict.leakedRejected.length} refused events stored`]
      : []),
    ...(verdict.duplicated.length > 0 ? [`${verdict.duplicated.length} duplicates`] : []),
  ];
}

/** Figures from what the clients saw plus the oracle's verdict. `failures`: the scenario's own
 *  criteria; the verdict's are added here. */
export function summarize(
  scenario: string,
  startedAt: number,
  log: OutcomeLog,
  verdict: OracleVerdict,
  more: Partial<Pick<ScenarioFigures, 'deadlocks' | 'recovery_ms' | 'rss_mb' | 'extra'>> & {
    readonly failures: readonly string[];
  },
): ScenarioFigures {
  const failures = [...verdictFailures(verdict), ...more.failures];
  const byStatus: Record<string, number> = {};
  for (const r of log.records) byStatus[String(r.status)] = (byStatus[String(r.status)] ?? 0) + 1;
  const latencies = log.records
    .filter((r) => r.status !== 0)
    .map((r) => r.answeredAt - r.sentAt)
    .sort((a, b) => a - b);
  return {
    scenario,
    started_at: new Date(startedAt).toISOString(),
    duration_s: Math.round((Date.now() - startedAt) / 100) / 10,
    requests: {
      sent: log.records.length,
      by_status: byStatus,
      net_errors: byStatus['0'] ?? 0,
    },
    events: {
      acked: log.ids('ok').size,
      failed: log.ids('fail').size,
      in_doubt: log.ids('inDoubt').size,
    },
    lost: verdict.lostAcked.length,
    phantom: verdict.phantom.length,
    leaked: verdict.leakedRejected.length,
    duplicates: verdict.duplicated.length,
    deadlocks: more.deadlocks ?? 0,
    latency_ms: {
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies.at(-1) ?? 0,
    },
    recovery_ms: more.recovery_ms ?? [],
    rss_mb: more.rss_mb ?? { start: 0, end: 0, max: 0 },
    extra: more.extra ?? {},
    pass: failures.length === 0,
    failures,
  };
}

export function writeScenarioResults(figures: ScenarioFigures): void {
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(`${resultsDir}${figures.scenario}.json`, `${JSON.stringify(figures, null, 2)}\n`);
}

/** Resident set size of a process in MB, from /proc (the server is another process). */
export function rssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return Math.round(kb / 102.4) / 10;
  } catch {
    return 0;
  }
}
