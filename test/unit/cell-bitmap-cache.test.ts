import { describe, expect, it } from 'vitest';
import { CellBitmapCache } from '../../src/metrics/cell-bitmap-cache.js';
import { Tally, type Recollection } from '../../src/metrics/tally.js';
import { bitmapWith } from '../../src/sql/user-set-format.js';

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

describe('Tally with a count memo', () => {
  const users = (ints: number[]) => bitmapWith(null, ints);

  it('counts a union of cells once per version of its cells, then answers from the memo', () => {
    const counts = new Map<string, { count: number; unique_users: number }>();
    const memo: Recollection = {
      recall: <T>(key: string) => counts.get(key) as T | undefined,
      remember: (key, c) => void counts.set(key, c as { count: number; unique_users: number }),
    };
    const tally = (version: string) => {
      const t = new Tally();
      t.addCell(2, users([1, 2]), `a@${version}`);
      t.addCell(3, users([2, 3]), `b@1`);
      return t;
    };
    expect(tally('1').counts(memo)).toEqual({ count: 5, unique_users: 3 });
    // Remembered: the same cells at the same versions are not counted again.
    expect(counts.size).toBe(1);
    for (const key of counts.keys()) counts.set(key, { count: 5, unique_users: 99 });
    expect(tally('1').counts(memo)).toEqual({ count: 5, unique_users: 99 });
    // A cell at another version is another union.
    expect(tally('2').counts(memo)).toEqual({ count: 5, unique_users: 3 });
  });

  it('never remembers a union that holds raw rows', () => {
    const memo = new CellBitmapCache(1024);
    const t = new Tally();
    t.addCell(2, users([1, 2]), 'a@1');
    t.addCell(1, users([5]), 'b@1');
    t.addRaw(1, null, 'someone-new');
    expect(t.counts(memo)).toEqual({ count: 4, unique_users: 4 });
    expect(memo.size).toBe(0);
    memo.remember('k', { count: 9, unique_users: 7 }, 65);
    expect([memo.recall('k'), memo.size]).toEqual([{ count: 9, unique_users: 7 }, 65]);
  });
});
