// Failed API key attempts per address (AUTH_FAILURES_PER_MIN): a token bucket from which only
// failures take. An address that finds it empty is refused outright until a token returns, a
// correct key included: otherwise a guesser could tell its correct guess from the rest at line rate.
import { OldestFirst, RateLimiter } from './rate-limiter.js';

export class AuthFailureLimiter {
  private readonly failures: RateLimiter;
  /** Address → epoch ms from which it may try again. Empty unless someone is guessing, so a
   *  request with a correct key skips the lookup (and reading its address) altogether. */
  private readonly blockedUntilMs = new Map<string, number>();
  private readonly evictions = new OldestFirst(this.blockedUntilMs);
  /** When the last block passes: from then on the table is emptied in one go. */
  private lastUntilMs = 0;

  /** maxClients bounds both tables, as it bounds the rate limiters'. */
  constructor(
    readonly perMinute: number,
    private readonly maxClients: number,
  ) {
    this.failures = new RateLimiter(perMinute, maxClients);
  }

  get enabled(): boolean {
    return this.perMinute > 0;
  }

  get anyBlocked(): boolean {
    return this.blockedUntilMs.size > 0;
  }

  /** Seconds this address must wait before it is heard again; 0 when it is not blocked. */
  blockedFor(address: string, nowMs = Date.now()): number {
    if (nowMs >= this.lastUntilMs) {
      this.blockedUntilMs.clear();
      return 0;
    }
    const until = this.blockedUntilMs.get(address);
    if (until === undefined || until <= nowMs) return 0;
    return Math.ceil((until - nowMs) / 1000);
  }

  /** Counts one failed attempt; the seconds to wait when it was one too many, else 0. */
  fail(address: string, nowMs = Date.now()): number {
    const decision = this.failures.take(address, nowMs);
    if (decision.allowed) return 0;
    if (this.blockedUntilMs.size >= this.maxClients) this.evictions.deleteOldest();
    // Whole seconds, as Retry-After says: a client that waits that long finds a token back.
    const until = nowMs + decision.retryAfterSeconds * 1000;
    this.blockedUntilMs.set(address, until);
    this.lastUntilMs = Math.max(this.lastUntilMs, until);
    return decision.retryAfterSeconds;
  }
}
