// Failed API key attempts per address: the limiter's table with explicit clocks, and the key check
// that consults it, with a stand-in for the one thing it reads from a response (the peer address).
import type { HttpResponse } from 'uWebSockets.js';
import { emptyAccessSnapshot } from '../../src/access/access-snapshot.js';
import { describe, expect, it } from 'vitest';
import { createApiKeyCheck, createAuthorize } from '../../src/http/api-key-auth.js';
import { AuthFailureLimiter } from '../../src/http/auth-failure-limiter.js';
import { unreadHead, type RequestHead } from '../../src/http/request-head.js';

const t0 = 1_700_000_000_000;

/** Failures a fresh limiter of 3 a minute answers at t0: 0 while allowed, else seconds to wait. */
function failuresAt(limiter: AuthFailureLimiter, address: string, count: number): number[] {
  return Array.from({ length: count }, () => limiter.fail(address, t0));
}

describe('AuthFailureLimiter', () => {
  it('lets perMinute failures through, then blocks the address until a token is back', () => {
    const limiter = new AuthFailureLimiter(3, 100);
    expect(failuresAt(limiter, 'ip:a', 4)).toEqual([0, 0, 0, 20]);
    expect([limiter.anyBlocked, limiter.blockedFor('ip:a', t0 + 1000)]).toEqual([true, 19]);
  });

  it('blocks one address without touching another', () => {
    const limiter = new AuthFailureLimiter(3, 100);
    failuresAt(limiter, 'ip:a', 4);
    expect([limiter.blockedFor('ip:b', t0), limiter.fail('ip:b', t0)]).toEqual([0, 0]);
  });

  it('hears the address again once its time has passed, and blocks it after one more failure', () => {
    const limiter = new AuthFailureLimiter(3, 100);
    failuresAt(limiter, 'ip:a', 4);
    const later = t0 + 20_000;
    expect(limiter.blockedFor('ip:a', later)).toBe(0);
    expect(limiter.anyBlocked).toBe(false);
    expect([limiter.fail('ip:a', later), limiter.fail('ip:a', later)]).toEqual([0, 20]);
  });

  it('empties its table of blocked addresses once their time has passed, whoever asks', () => {
    const limiter = new AuthFailureLimiter(3, 100);
    failuresAt(limiter, 'ip:a', 4);
    failuresAt(limiter, 'ip:b', 4);
    expect(limiter.blockedFor('ip:c', t0 + 20_000)).toBe(0);
    expect(limiter.anyBlocked).toBe(false);
  });

  it('keeps at most maxClients blocked addresses, forgetting the oldest', () => {
    const limiter = new AuthFailureLimiter(1, 2);
    for (const address of ['ip:a', 'ip:b', 'ip:c']) failuresAt(limiter, address, 2);
    expect(['ip:a', 'ip:b', 'ip:c'].map((a) => limiter.blockedFor(a, t0))).toEqual([0, 60, 60]);
  });
});

const encoder = new TextEncoder();

/** A response whose only use here is its peer address; counts how often that is read. */
function peer(address: string): HttpResponse & { reads: number } {
  const res = {
    reads: 0,
    getRemoteAddressAsText() {
      res.reads++;
      return encoder.encode(address).buffer;
    },
  };
  return res as unknown as HttpResponse & { reads: number };
}

function withKey(apiKey: string): RequestHead {
  return { ...unreadHead, method: 'get', url: '/metrics', apiKey };
}

describe('createAuthorize', () => {
  const authorizeWith = (perMinute: number) =>
    createAuthorize(
      createApiKeyCheck(['right'], () => emptyAccessSnapshot),
      new AuthFailureLimiter(perMinute, 100),
    );
  const codeOf = (decision: ReturnType<ReturnType<typeof authorizeWith>>) =>
    decision.ok ? decision.caller.keyId : decision.problem.code;

  it('answers 401 to AUTH_FAILURES_PER_MIN wrong keys, then 429 to every request of that address, a correct key included', () => {
    const authorize = authorizeWith(2);
    const guesser = peer('2001:db8::1');
    const sameSlash64 = peer('2001:db8::2');
    const answers = [
      authorize(guesser, withKey('wrong-1'), 'read'),
      authorize(guesser, withKey('wrong-2'), 'read'),
      authorize(guesser, withKey('wrong-3'), 'read'),
      authorize(guesser, withKey('right'), 'read'),
      authorize(sameSlash64, withKey('right'), 'read'),
    ];
    expect(answers.map(codeOf)).toEqual([
      'unauthorized',
      'unauthorized',
      'too_many_auth_failures',
      'too_many_auth_failures',
      'too_many_auth_failures',
    ]);
    expect(answers.map((a) => (a.ok ? undefined : a.problem.retryAfterSeconds))).toEqual([
      undefined,
      undefined,
      30,
      30,
      30,
    ]);
  });

  it("lets another address's correct key through while one address is blocked", () => {
    const authorize = authorizeWith(1);
    authorize(peer('10.0.0.1'), withKey('wrong'), 'read');
    authorize(peer('10.0.0.1'), withKey('wrong'), 'read');
    expect(codeOf(authorize(peer('10.0.0.2'), withKey('right'), 'read'))).toBe('k0');
  });

  it('reads no peer address for a correct key while no address is blocked', () => {
    const authorize = authorizeWith(1);
    const client = peer('10.0.0.1');
    authorize(client, withKey('wrong'), 'read');
    expect(codeOf(authorize(client, withKey('right'), 'read'))).toBe('k0');
    expect(client.reads).toBe(1);
  });

  it('never blocks with AUTH_FAILURES_PER_MIN=0', () => {
    const authorize = authorizeWith(0);
    const client = peer('10.0.0.1');
    for (let i = 0; i < 100; i++) authorize(client, withKey('wrong'), 'read');
    expect([codeOf(authorize(client, withKey('wrong'), 'read')), client.reads]).toEqual([
      'unauthorized',
      0,
    ]);
  });
});
