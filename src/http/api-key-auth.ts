// API keys: from X-API-Key or Authorization: Bearer, never from the query string (URLs end up in
// access logs). Compared as SHA-256 digests with timingSafeEqual, which needs equal lengths.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { HttpResponse } from 'uWebSockets.js';
import { defaultProjectId, openCaller, type Caller } from '../access/caller.js';
import { problem, type Problem } from '../errors.js';
import type { AuthFailureLimiter } from './auth-failure-limiter.js';
import { addressIdentity } from './client-identity.js';
import type { RequestHead } from './request-head.js';

/** One answer for a missing, malformed or unknown key: the body never says which. */
export const unauthorizedProblem = problem(
  'unauthorized',
  'Send a valid key in X-API-Key or Authorization: Bearer.',
);

/** The caller's keyId is `k0` for the first of API_KEYS; null when no keys are configured and
 *  every request is let in. */
export type AuthResult = { readonly ok: true; readonly caller: Caller } | { readonly ok: false };

export type ApiKeyCheck = (head: RequestHead) => AuthResult;

const open: AuthResult = { ok: true, caller: openCaller };
const refused: AuthResult = { ok: false };

export function createApiKeyCheck(keys: readonly string[]): ApiKeyCheck {
  if (keys.length === 0) return () => open;
  const digests = keys.map(sha256);
  const accepted: AuthResult[] = keys.map((_, i) => ({
    ok: true,
    caller: { keyId: `k${i}`, projectId: defaultProjectId },
  }));
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

/** What a route acts on: the key check, with failed attempts counted per address. */
export type AuthDecision =
  | { readonly ok: true; readonly caller: Caller }
  | { readonly ok: false; readonly problem: Problem };

export type Authorize = (res: HttpResponse, head: RequestHead) => AuthDecision;

export function createAuthorize(check: ApiKeyCheck, failures: AuthFailureLimiter): Authorize {
  const unauthorized: AuthDecision = { ok: false, problem: unauthorizedProblem };
  const tooManyFailures = (retryAfterSeconds: number): AuthDecision => ({
    ok: false,
    problem: problem(
      'too_many_auth_failures',
      `More than ${failures.perMinute} failed API key attempts in a minute from this address (AUTH_FAILURES_PER_MIN); every request from it is refused until Retry-After has passed.`,
      { retryAfterSeconds },
    ),
  });
  return (res, head) => {
    let address: string | undefined;
    // A blocked address is refused before its key is even hashed, a correct one included.
    if (failures.anyBlocked) {
      address = addressIdentity(res);
      const wait = failures.blockedFor(address);
      if (wait > 0) return tooManyFailures(wait);
    }
    const result = check(head);
    if (result.ok) return result;
    if (!failures.enabled) return unauthorized;
    const wait = failures.fail(address ?? addressIdentity(res));
    return wait > 0 ? tooManyFailures(wait) : unauthorized;
  };
}

function bearerToken(authorization: string): string {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  return match?.[1] ?? '';
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
