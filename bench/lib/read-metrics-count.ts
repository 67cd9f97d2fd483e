// Stored events as a running instance reports them (GET /metrics totals.count), for --url mode
// where the bench has no database access. /metrics is rate-limited (20/min by default), so polls
// are few and a 429's Retry-After is honoured.

export type MetricsCount =
  { readonly ok: true; readonly count: number } | { readonly ok: false; readonly reason: string };

export interface MetricsQuery {
  readonly baseUrl: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly eventName: string;
  readonly fromSeconds: number;
  readonly toSeconds: number;
}

async function readOnce(query: MetricsQuery): Promise<MetricsCount & { retryAfterMs?: number }> {
  const url = new URL('/metrics', query.baseUrl);
  url.searchParams.set('event_name', query.eventName);
  url.searchParams.set('from', String(query.fromSeconds));
  url.searchParams.set('to', String(query.toSeconds));
  let res: Response;
  try {
    res = await fetch(url, { headers: query.headers, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    return { ok: false, reason: `GET /metrics failed: ${(err as Error).message}` };
  }
  const text = await res.text();
  if (res.status === 429) {
    const seconds = Math.min(Number(res.headers.get('retry-after') ?? '5') || 5, 30);
    return { ok: false, reason: 'GET /metrics answered 429', retryAfterMs: seconds * 1000 };
  }
  if (res.status !== 200) return { ok: false, reason: `GET /metrics answered ${res.status}` };
  try {
    const body = JSON.parse(text) as { totals?: { count?: unknown } };
    const count = body.totals?.count;
    if (typeof count === 'number') return { ok: true, count };
  } catch {
    // fall through: an answer without totals.count is "unavailable" too
  }
  return { ok: false, reason: 'GET /metrics answered 200 without totals.count' };
}

/** Polls until two answers agree (a queued-mode server may still be writing), at most maxPolls. */
export async function readMetricsCount(
  query: MetricsQuery,
  maxPolls = 6,
  pollIntervalMs = 3000,
): Promise<MetricsCount> {
  let last: number | undefined;
  let result: MetricsCount = { ok: false, reason: 'not polled' };
  for (let poll = 0; poll < maxPolls; poll++) {
    const answer = await readOnce(query);
    if (!answer.ok) {
      if (answer.retryAfterMs === undefined) return answer; // 404, 500…: unavailable, say so
      result = answer;
      await sleep(answer.retryAfterMs);
      continue;
    }
    result = answer;
    if (answer.count === last) return answer;
    last = answer.count;
    await sleep(pollIntervalMs);
  }
  return result;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
