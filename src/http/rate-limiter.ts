// Token bucket per client (GET /metrics, GET /events/export, failed API key attempts): perMinute
// tokens, refilled evenly. Per server process: N replicas allow up to N× the limit in total.
import { problem, type Problem } from '../errors.js';

export interface RateDecision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  /** Seconds until the bucket is full again (RateLimit-Reset). */
  readonly resetSeconds: number;
  /** Seconds until the next token (Retry-After), when refused. */
  readonly retryAfterSeconds: number;
}

interface Bucket {
  tokens: number;
  updatedMs: number;
}

/** Deletes the oldest keys of a Map (insertion order) through one keys() iterator kept for the
 *  Map's lifetime. A fresh keys() walks every deleted slot at the front of a V8 Map again: with
 *  100k clients each eviction then cost 40–150 µs of the thread that serves every request. */
export class OldestFirst<K> {
  private order: Iterator<K>;

  constructor(private readonly map: Map<K, unknown>) {
    this.order = map.keys();
  }

  deleteOldest(): void {
    let oldest = this.order.next();
    if (oldest.done === true) {
      // Exhausted once it met the end of the Map; a new one starts at its front.
      this.order = this.map.keys();
      oldest = this.order.next();
    }
    if (oldest.done !== true) this.map.delete(oldest.value);
  }
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly evictions = new OldestFirst(this.buckets);
  private readonly tokensPerMs: number;

  /** maxClients bounds memory: the least recently seen client is forgotten first (a full bucket). */
  constructor(
    readonly perMinute: number,
    private readonly maxClients: number,
  ) {
    this.tokensPerMs = perMinute / 60_000;
  }

  get enabled(): boolean {
    return this.perMinute > 0;
  }

  take(client: string, nowMs = Date.now()): RateDecision {
    let bucket = this.buckets.get(client);
    if (bucket) {
      this.buckets.delete(client); // re-insert below: Map order is then least recently seen first
      bucket.tokens = Math.min(
        this.perMinute,
        bucket.tokens + (nowMs - bucket.updatedMs) * this.tokensPerMs,
      );
      bucket.updatedMs = nowMs;
    } else {
      bucket = { tokens: this.perMinute, updatedMs: nowMs };
      if (this.buckets.size >= this.maxClients) this.evictions.deleteOldest();
    }
    this.buckets.set(client, bucket);
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    return {
      allowed,
      limit: this.perMinute,
      remaining: Math.floor(bucket.tokens),
      resetSeconds: Math.ceil((this.perMinute - bucket.tokens) / this.tokensPerMs / 1000),
      retryAfterSeconds: allowed
        ? 0
        : Math.max(1, Math.ceil((1 - bucket.tokens) / this.tokensPerMs / 1000)),
    };
  }
}

/** Takes a token for a limited route: the RateLimit-* headers its every answer carries, and the 429
 *  to send instead when the client is over. `what` names the requests and the variable. */
export function limitRate(
  limiter: RateLimiter,
  client: string,
  what: { readonly requests: string; readonly variable: string },
): { readonly headers: Record<string, string>; readonly refusal: Problem | null } {
  const decision = limiter.take(client);
  const headers = {
    'ratelimit-limit': String(decision.limit),
    'ratelimit-remaining': String(decision.remaining),
    'ratelimit-reset': String(decision.resetSeconds),
  };
  if (decision.allowed) return { headers, refusal: null };
  return {
    headers,
    refusal: problem(
      'rate_limited',
      `At most ${decision.limit} ${what.requests} per minute (${what.variable}).`,
      { retryAfterSeconds: decision.retryAfterSeconds },
    ),
  };
}
