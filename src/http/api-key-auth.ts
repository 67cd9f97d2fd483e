// API keys: from X-API-Key or Authorization: Bearer, never from the query string (URLs end up in
// access logs). Compared as SHA-256 digests with timingSafeEqual, which needs equal lengths.
import { createHash, timingSafeEqual } from 'node:crypto';
import { problem } from '../errors.js';
import type { RequestHead } from './read-body.js';

/** One answer for a missing, malformed or unknown key: the body never says which. */
export const unauthorizedProblem = problem(
  'unauthorized',
  'Send a valid key in X-API-Key or Authorization: Bearer.',
);

export type ApiKeyCheck = (head: RequestHead) => boolean;

export function createApiKeyCheck(keys: readonly string[]): ApiKeyCheck {
  if (keys.length === 0) return () => true;
  const digests = keys.map(sha256);
  return (head) => {
    const presented = head.apiKey !== '' ? head.apiKey : bearerToken(head.authorization);
    if (presented === '') return false;
    const digest = sha256(presented);
    let match = false;
    // Every key is compared, so the time taken does not say which one matched.
    for (const known of digests) match = timingSafeEqual(digest, known) || match;
    return match;
  };
}

function bearerToken(authorization: string): string {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  return match?.[1] ?? '';
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
