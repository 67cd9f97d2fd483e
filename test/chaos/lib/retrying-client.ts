// A client retrying like an SDK: a request is re-sent with the SAME event ids on a
// 5xx, 429, timeout or network error until it is acknowledged, so idempotency (not the client)
// decides what is stored. Every attempt is recorded, so the set oracle sees the in-doubt ones too.
import { sendBulk, type OutcomeLog, type RequestRecord } from '../../helpers/load.js';
import { sleep } from '../../helpers/wait-until.js';

export interface RetryOptions {
  readonly log: OutcomeLog;
  readonly requestTimeoutMs: number;
  readonly maxAttempts: number;
  /** Ceiling on one wait; Retry-After is honoured up to it (the server sends 1 s). */
  readonly maxBackoffMs: number;
}

/** Sends until a 202, a 4xx other than 429 (definite), or maxAttempts; returns the last attempt. */
export async function sendUntilAcked(
  url: string,
  events: readonly { event_id?: string }[],
  options: RetryOptions,
): Promise<{ final: RequestRecord; attempts: number }> {
  let backoffMs = 50;
  for (let attempt = 1; ; attempt++) {
    const record = await sendBulk(url, events, options);
    options.log.records.push(record);
    const retryable = record.status === 0 || record.status === 429 || record.status >= 500;
    if (!retryable || attempt >= options.maxAttempts) return { final: record, attempts: attempt };
    const retryAfterMs = Number(record.retryAfter ?? 0) * 1000;
    const jitter = Math.random() * backoffMs;
    await sleep(Math.min(options.maxBackoffMs, Math.max(retryAfterMs, backoffMs) + jitter));
    backoffMs = Math.min(backoffMs * 2, options.maxBackoffMs);
  }
}

/** Runs `requests` over `clients` concurrent connections, each taking the next unsent one. */
export async function sendAllUntilAcked(
  url: string,
  requests: readonly (readonly { event_id?: string }[])[],
  clients: number,
  options: RetryOptions,
  onAcked: (events: readonly { event_id?: string }[], final: RequestRecord) => void = () =>
    undefined,
): Promise<void> {
  let next = 0;
  const client = async () => {
    while (next < requests.length) {
      const events = requests[next++]!;
      const { final } = await sendUntilAcked(url, events, options);
      onAcked(events, final);
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
}
