// In-process cache of rendered /metrics answers (node-cache), with single flight: concurrent
// misses for one key share one database query. Per process: replicas may differ for up to a TTL.
import { createHash } from 'node:crypto';
import NodeCache from 'node-cache';

export interface CachedAnswer {
  /** The answer's JSON without the freshness members, which are added per response. */
  readonly dataJson: string;
  readonly etag: string;
  readonly asOfMs: number;
}

export interface MetricsCacheOptions {
  readonly ttlMs: number;
  readonly maxKeys: number;
}

export class MetricsCache {
  private readonly cache: NodeCache;
  private readonly inFlight = new Map<string, Promise<CachedAnswer>>();

  constructor(private readonly options: MetricsCacheOptions) {
    this.cache = new NodeCache({
      stdTTL: options.ttlMs / 1000,
      checkperiod: Math.max(1, Math.ceil(options.ttlMs / 1000)),
      // Values are frozen and never mutated: skip node-cache's deep clone on every get and set.
      useClones: false,
      // Keys come from query parameters: bounded, or they are a memory DoS.
      maxKeys: options.maxKeys,
    });
  }

  /** { answer, cached }: cached is true when no query ran for this call. */
  async get(
    key: string,
    load: () => Promise<{ data: unknown; asOfMs: number }>,
  ): Promise<{ answer: CachedAnswer; cached: boolean }> {
    if (this.options.ttlMs > 0) {
      const hit = this.cache.get<CachedAnswer>(key);
      if (hit) return { answer: hit, cached: true };
    }
    const pending = this.inFlight.get(key);
    if (pending) return { answer: await pending, cached: true };
    const loading = load().then(({ data, asOfMs }) => {
      const dataJson = JSON.stringify(data);
      const answer = Object.freeze({
        dataJson,
        asOfMs,
        etag: `"${createHash('sha1').update(dataJson).digest('base64url')}"`,
      });
      if (this.options.ttlMs > 0) {
        try {
          this.cache.set(key, answer);
        } catch {
          // ECACHEFULL: answer uncached rather than evict; entries expire within a TTL.
        }
      }
      return answer;
    });
    this.inFlight.set(key, loading);
    try {
      return { answer: await loading, cached: false };
    } finally {
      this.inFlight.delete(key);
    }
  }

  get size(): number {
    return this.cache.keys().length;
  }

  close(): void {
    this.cache.close();
  }
}
