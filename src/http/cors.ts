// CORS for the ingest routes, off unless CORS_ORIGINS lists origins. An allowed origin is echoed,
// never `*`, and no credentials are allowed: a browser-embedded key is public anyway, so the
// allowlist is what keeps other sites' pages from writing here.
import type { Headers } from './exchange.js';

export interface CorsPolicy {
  readonly enabled: boolean;
  /** Headers for an actual response: the origin echoed if allowed, and Vary either way. */
  responseHeaders(origin: string): Headers | undefined;
  /** Headers answering a preflight, or null when the origin is not allowed. */
  preflightHeaders(origin: string): Headers | null;
}

/** How long a browser may reuse a preflight answer; 10 minutes is Chromium's cap (Firefox: 24 h). */
const preflightMaxAgeSeconds = 600;

export function createCorsPolicy(origins: readonly string[]): CorsPolicy {
  const allowed = new Set(origins);
  if (allowed.size === 0) {
    return { enabled: false, responseHeaders: () => undefined, preflightHeaders: () => null };
  }
  // A cache in front must not hand one origin's answer to another.
  const vary = { vary: 'Origin' };
  return {
    enabled: true,
    responseHeaders: (origin) =>
      allowed.has(origin) ? { ...vary, 'access-control-allow-origin': origin } : vary,
    preflightHeaders: (origin) =>
      allowed.has(origin)
        ? {
            ...vary,
            'access-control-allow-origin': origin,
            'access-control-allow-methods': 'POST',
            'access-control-allow-headers':
              'content-type, authorization, x-api-key, content-encoding',
            'access-control-max-age': String(preflightMaxAgeSeconds),
          }
        : null,
  };
}
