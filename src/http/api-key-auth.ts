// API keys: from X-API-Key or Authorization: Bearer, never from the query string (URLs end up in
// access logs). Root keys (API_KEYS) are compared as SHA-256 digests with timingSafeEqual, which
// needs equal lengths; stored keys are found by their digest in the in-memory access snapshot.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { HttpResponse } from 'uWebSockets.js';
import type { AccessSnapshot, KeyScope } from '../access/access-snapshot.js';
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

/** A key of another scope than the route needs: a valid key, so not counted as a failed attempt. */
export function insufficientScopeProblem(needed: KeyScope | 'root'): Problem {
  return problem(
    'insufficient_scope',
    needed === 'root'
      ? 'Only a root key (API_KEYS) may do this.'
      : `This route needs a key with the ${needed} scope.`,
    { extensions: { required_scope: needed } },
  );
}

/** The caller's keyId is `k0` for the first of API_KEYS, `s<id>` for a stored key; null in open
 *  mode (no API_KEYS and no stored key), where every keyed route but the admin API lets everyone
 *  in. A refusal carries its problem when it is not the one 401 (a key of another scope). */
export type AuthResult =
  | { readonly ok: true; readonly caller: Caller }
  | { readonly ok: false; readonly problem: Problem | null };

/** keyedWhenOpen: the admin API, which needs a key even in open mode. */
export type ApiKeyCheck = (
  head: RequestHead,
  scope: KeyScope,
  keyedWhenOpen?: boolean,
) => AuthResult;

const open: AuthResult = { ok: true, caller: openCaller };
const refused: AuthResult = { ok: false, problem: null };
const outOfScope = Object.fromEntries(
  (['write', 'read', 'admin'] as const).map((scope) => [
    scope,
    { ok: false, problem: insufficientScopeProblem(scope) },
  ]),
) as Record<KeyScope, AuthResult>;

export function createApiKeyCheck(
  rootKeys: readonly string[],
  access: () => AccessSnapshot,
): ApiKeyCheck {
  const digests = rootKeys.map(sha256);
  const accepted: AuthResult[] = rootKeys.map((_, i) => ({
    ok: true,
    caller: { keyId: `k${i}`, projectId: defaultProjectId },
  }));
  return (head, scope, keyedWhenOpen = false) => {
    const snapshot = access();
    if (digests.length === 0 && snapshot.noStoredKeys && !keyedWhenOpen) return open;
    const presented = head.apiKey !== '' ? head.apiKey : bearerToken(head.authorization);
    if (presented === '') return refused;
    const digest = sha256(presented);
    let match = -1;
    // Every root key is compared, so the time taken does not say which one matched.
    for (let i = 0; i < digests.length; i++) if (timingSafeEqual(digest, digests[i]!)) match = i;
    if (match >= 0) return accepted[match]!;
    const key = snapshot.keys.get(digest.toString('base64'));
    if (key === undefined) return refused;
    key.usedAtMs = Date.now();
    return key.scope === scope ? key.granted : outOfScope[scope];
  };
}

/** What a route acts on: the key check, with failed attempts counted per address. */
export type AuthDecision =
  | { readonly ok: true; readonly caller: Caller }
  | { readonly ok: false; readonly problem: Problem };

/** res: the peer, a request's or a WebSocket's. */
export type Authorize = (
  res: Pick<HttpResponse, 'getRemoteAddressAsText'>,
  head: RequestHead,
  scope: KeyScope,
  keyedWhenOpen?: boolean,
) => AuthDecision;

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
  return (res, head, scope, keyedWhenOpen) => {
    let address: string | undefined;
    // A blocked address is refused before its key is even hashed, a correct one included.
    if (failures.anyBlocked) {
      address = addressIdentity(res);
      const wait = failures.blockedFor(address);
      if (wait > 0) return tooManyFailures(wait);
    }
    const result = check(head, scope, keyedWhenOpen);
    if (result.ok) return result;
    if (result.problem) return { ok: false, problem: result.problem };
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
