// A project's ingest quota (events per second) as a token bucket per project, burst = 2 s of
// quota. Per process: each of CLUSTER_PROCESSES takes quota ÷ processes, so one instance holds the
// quota in total whichever process a request lands on; instances sharing a database each hold it.
import { problem, type Problem } from '../errors.js';
import type { ProjectRow } from '../sql/access-rows.js';

const burstSeconds = 2;

interface Bucket {
  tokens: number;
  updatedMs: number;
  perSecond: number;
}

export interface QuotaRefusal {
  readonly problem: Problem;
  readonly headers: Readonly<Record<string, string>>;
}

export class IngestQuotas {
  private readonly buckets = new Map<number, Bucket>();

  constructor(private readonly processes: number) {}

  /** Takes `events` tokens from the project's bucket, all or none; the refusal when it cannot. */
  take(project: ProjectRow | undefined, events: number, nowMs = Date.now()): QuotaRefusal | null {
    const quota = project?.ingest_events_per_second ?? null;
    if (quota === null) return null;
    const perSecond = quota / this.processes;
    const capacity = perSecond * burstSeconds;
    let bucket = this.buckets.get(project!.id);
    if (bucket === undefined) {
      bucket = { tokens: capacity, updatedMs: nowMs, perSecond };
      this.buckets.set(project!.id, bucket);
    } else {
      // A changed quota applies from now: the tokens earned so far are kept, up to the new burst.
      const earned = ((nowMs - bucket.updatedMs) / 1000) * bucket.perSecond;
      bucket.tokens = Math.min(capacity, bucket.tokens + earned);
      bucket.updatedMs = nowMs;
      bucket.perSecond = perSecond;
    }
    if (bucket.tokens >= events) {
      bucket.tokens -= events;
      return null;
    }
    const missing = events - bucket.tokens;
    return {
      problem: problem(
        'quota_exceeded',
        events > capacity
          ? `This request holds ${events} events, more than the project's burst of ${Math.floor(capacity)} on this process: split it.`
          : `The project may ingest ${quota} events per second (ingest_events_per_second).`,
        { retryAfterSeconds: Math.max(1, Math.ceil(missing / perSecond)) },
      ),
      headers: {
        'ratelimit-limit': String(Math.floor(capacity)),
        'ratelimit-remaining': String(Math.floor(bucket.tokens)),
        'ratelimit-reset': String(Math.ceil((capacity - bucket.tokens) / perSecond)),
      },
    };
  }
}
