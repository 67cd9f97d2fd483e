// RateLimiter: the token bucket per client, and the bound on how many clients it keeps.
import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/http/rate-limiter.js';

const t0 = 1_700_000_000_000;

describe('RateLimiter', () => {
  it('forgets the least recently seen client first once maxClients are kept', () => {
    const limiter = new RateLimiter(1, 2);
    limiter.take('a', t0);
    limiter.take('b', t0);
    limiter.take('a', t0); // a is now the most recently seen
    limiter.take('c', t0); // b goes
    expect(['a', 'c', 'b'].map((client) => limiter.take(client, t0).allowed)).toEqual([
      false,
      false,
      true,
    ]);
  });

  it('evicts in constant time: 200k new clients over a full table of 100k take far less than 4 s', () => {
    // A fresh keys() per eviction walks the Map's deleted front slots again (~15 s here); one
    // long-lived iterator takes about half a second.
    const limiter = new RateLimiter(60, 100_000);
    const started = Date.now();
    for (let i = 0; i < 300_000; i++) limiter.take(`ip:${i}`, t0);
    expect(Date.now() - started).toBeLessThan(4000);
  });
});
