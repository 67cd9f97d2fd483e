import { describe, expect, it } from 'vitest';
import { CellBitmapCache } from '../../src/metrics/cell-bitmap-cache.js';

const bitmap = (length: number, fill: number) => ({
  users: new Uint8Array(length).fill(fill),
  eventCount: fill,
});

describe('CellBitmapCache', () => {
  it('serves a bitmap only at the version it was stored with', () => {
    const cache = new CellBitmapCache(1024);
    cache.set('cell', '100', bitmap(3, 7));
    expect(cache.get('cell', '101')).toBeUndefined();
    expect([...cache.get('cell', '100')!.users.subarray(0, 3)]).toEqual([7, 7, 7]);
    expect(cache.get('cell', '100')!.eventCount).toBe(7);
  });

  it('counts a user list by its bytes, 4 per user', () => {
    const cache = new CellBitmapCache(1024);
    cache.set('list', '1', { users: Uint32Array.from([3, 90_000]), eventCount: 2 });
    expect(cache.size).toBe(8);
    expect([...cache.get('list', '1')!.users]).toEqual([3, 90_000]);
  });

  it('evicts the least recently used entries beyond its byte bound', () => {
    const cache = new CellBitmapCache(24);
    cache.set('a', '1', bitmap(8, 1));
    cache.set('b', '1', bitmap(8, 2));
    cache.set('c', '1', bitmap(8, 3));
    cache.get('a', '1'); // a is now the most recent, b the oldest
    cache.set('d', '1', bitmap(8, 4));
    expect(cache.get('b', '1')).toBeUndefined();
    expect(cache.get('a', '1')).toBeDefined();
    expect(cache.get('d', '1')).toBeDefined();
    expect(cache.size).toBe(24);
  });

  it('replaces an entry in place and never holds a bitmap larger than its bound', () => {
    const cache = new CellBitmapCache(16);
    cache.set('a', '1', bitmap(8, 1));
    cache.set('a', '2', bitmap(16, 2));
    expect(cache.size).toBe(16);
    cache.set('a', '3', bitmap(17, 3));
    expect(cache.get('a', '3')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('caches nothing with a bound of 0 (METRICS_BITMAP_CACHE_MB=0)', () => {
    const cache = new CellBitmapCache(0);
    cache.set('a', '1', bitmap(1, 1));
    expect(cache.get('a', '1')).toBeUndefined();
  });
});
