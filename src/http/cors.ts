// CORS for the ingest routes, off unless CORS_ORIGINS or a project lists origins. An allowed origin
// is echoed, never `*`, and no credentials are allowed: a browser-embedded key is public anyway, so
// the allowlist is what keeps other sites' pages from writing here. A preflight carries no key, so
// it allows the origins of every project; the write itself is held to its key's project.
import type { Caller } from '../access/caller.js';
import type { AccessSnapshot } from '../access/access-snapshot.js';
import type { Headers } from './exchange.js';

export interface CorsPolicy {
  enabled(): boolean;
  /** False when a stored write key sends an Origin that neither CORS_ORIGINS nor its project's
   *  cors_origins lists, while one of them lists any: the write is refused. */
  allowsWrite(origin: string, caller: Caller): boolean;
  /** Headers for an actual response: the origin echoed if allowed, and Vary either way. */
  responseHeaders(origin: string): Headers | undefined;
  /** Headers answering a preflight, or null when the origin is not allowed. */
  preflightHeaders(origin: string): Headers | null;
}

/** How long a browser may reuse a preflight answer; 10 minutes is Chromium's cap (Firefox: 24 h). */
const preflightMaxAgeSeconds = 600;

export function createCorsPolicy(
  origins: readonly string[],
  access: () => AccessSnapshot,
): CorsPolicy {
  const global = new Set(origins);
  const enabled = () => global.size > 0 || access().projectOrigins.size > 0;
  const allowed = (origin: string) => global.has(origin) || access().projectOrigins.has(origin);
  // A cache in front must not hand one origin's answer to another. Each answer is one literal: a
  // spread copy given one more field is a slow object on Node 20 (see readHead).
  const varyOrigin = 'Origin';
  const vary = { vary: varyOrigin };
  return {
    enabled,
    allowsWrite: (origin, caller) => {
      if (origin === '' || global.has(origin) || caller.keyId?.startsWith('s') !== true)
        return true;
      const own = access().projects.get(caller.projectId)?.cors_origins ?? [];
      return own.includes(origin) || (own.length === 0 && global.size === 0);
    },
    responseHeaders: (origin) =>
      !enabled()
        ? undefined
        : allowed(origin)
          ? { vary: varyOrigin, 'access-control-allow-origin': origin }
          : vary,
    preflightHeaders: (origin) =>
      allowed(origin)
        ? {
            vary: varyOrigin,
            'access-control-allow-origin': origin,
            'access-control-allow-methods': 'POST',
            'access-control-allow-headers':
              'content-type, authorization, x-api-key, content-encoding',
            'access-control-max-age': String(preflightMaxAgeSeconds),
          }
        : null,
  };
}
