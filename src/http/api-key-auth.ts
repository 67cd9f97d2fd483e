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

/** keyId names the matching key without revealing it (`k0` is the first of API_KEYS); null when
 *  no keys are configured and every request is let in. */
export type AuthResult =
  { readonly ok: true; readonly keyId: string | null } | { readonly ok: false };

export type ApiKeyCheck = (head: RequestHead) => AuthResult;

const open: AuthResult = { ok: true, keyId: null };
const refused: AuthResult = { ok: false };

export function createApiKeyCheck(keys: readonly string[]): ApiKeyCheck {
  if (keys.length === 0) return () => open;
  const digests = keys.map(sha256);
  const accepted: AuthResult[] = keys.map((_, i) => ({ ok: true, keyId: `k${i}` }));
  return (head) => {
    const presented = head.apiKey !== '' ? head.apiKey : bearerToken(head.authorization);
    if (presented === '') return refused;
    const digest = sha256(presented);
    let match = -1;
    // Every key is compared, so the time taken does not say which one matched.
    for (let i = 0; i < digests.length; i++) if (timingSafeEqual(digest, digests[i]!)) match = i;
    return match >= 0 ? accepted[match]! : refused;
  };
}

function bearerToken(authorization: string): string {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  return match?.[1] ?? '';
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
