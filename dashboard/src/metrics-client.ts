// GET /metrics from the page: the read key as X-API-Key when there is one, and the prompt when the
// server refuses without a usable one.
import { forgetReadKey, storedReadKey, type KeyPrompt } from './read-key.js';

export interface Counts {
  readonly count: number;
  readonly unique_users: number;
}
export interface Bucket extends Counts {
  readonly bucket_start: number;
}
export interface BreakdownValue extends Counts {
  readonly value: string | null;
}
export interface MetricsAnswer {
  readonly totals: Counts;
  readonly buckets?: Bucket[];
  readonly breakdown?: { by: string; values: BreakdownValue[]; other: Counts };
}

export type MetricsResult = { ok: true; answer: MetricsAnswer } | { ok: false; message: string };

interface Problem {
  readonly code?: string;
  readonly detail?: string;
}

/** Why a key was refused, in the page's words. */
export function refusalMessage(code: string | undefined): string {
  return code === 'insufficient_scope'
    ? 'That key cannot read metrics (it has no read scope). Enter a read key.'
    : 'That key was not accepted (unknown or revoked). Enter a read key.';
}

export function createMetricsClient(prompt: KeyPrompt) {
  return async function fetchMetrics(params: URLSearchParams): Promise<MetricsResult> {
    for (;;) {
      const key = storedReadKey();
      const response = await fetch(`/metrics?${params.toString()}`, {
        headers: key === null ? {} : { 'x-api-key': key },
      });
      if (response.ok) {
        if (key !== null) prompt.accepted();
        return { ok: true, answer: (await response.json()) as MetricsAnswer };
      }
      const problem = (await response.json().catch(() => ({}))) as Problem;
      if (response.status !== 401 && response.status !== 403)
        return { ok: false, message: problem.detail ?? `HTTP ${response.status}` };
      if (key !== null) forgetReadKey(key);
      await prompt.ask(
        key === null
          ? 'Enter a read key to see this server’s metrics.'
          : refusalMessage(problem.code),
      );
    }
  };
}
