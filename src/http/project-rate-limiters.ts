// GET /metrics per key: RATE_LIMIT_METRICS_PER_MIN, or for the keys of a project that sets
// metrics_requests_per_minute, that. A project's limiter is replaced when its setting changes.
import { RateLimiter } from './rate-limiter.js';

export interface ChosenLimiter {
  readonly limiter: RateLimiter;
  /** What the 429 names as the source of the limit. */
  readonly variable: string;
}

export class ProjectRateLimiters {
  private readonly byProject = new Map<number, ChosenLimiter>();
  private readonly global: ChosenLimiter;

  constructor(
    global: RateLimiter,
    private readonly perMinuteOf: (projectId: number) => number | null,
    private readonly maxClients: number,
  ) {
    this.global = { limiter: global, variable: 'RATE_LIMIT_METRICS_PER_MIN' };
  }

  of(projectId: number): ChosenLimiter {
    const perMinute = this.perMinuteOf(projectId);
    if (perMinute === null) return this.global;
    let chosen = this.byProject.get(projectId);
    if (chosen === undefined || chosen.limiter.perMinute !== perMinute) {
      chosen = {
        limiter: new RateLimiter(perMinute, this.maxClients),
        variable: "the project's metrics_requests_per_minute",
      };
      this.byProject.set(projectId, chosen);
    }
    return chosen;
  }
}
