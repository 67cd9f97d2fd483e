// /live's pure parts: the subscribe message, the commit notification payloads and the error codes
// docs/errors.md lists.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { liveErrorCodes, parseSubscribe } from '../../src/live/live-messages.js';
import { parseSnapshot } from '../../src/sql/pg-snapshot.js';
import {
  commitPayloads,
  keyLength,
  parseCommitPayload,
} from '../../src/sql/commit-notifications.js';

const maxWindow = 3660 * 86_400 - 1;

describe('parseSubscribe', () => {
  it('reads a full subscription', () => {
    expect(
      parseSubscribe(
        '{"type":"subscribe","stream":"metrics","key":"k","event_name":"buy","channel":"web","window_seconds":3600}',
        maxWindow,
      ),
    ).toEqual({
      ok: true,
      subscription: {
        stream: 'metrics',
        key: 'k',
        eventName: 'buy',
        channel: 'web',
        windowSeconds: 3600,
      },
    });
  });

  it('gives a missing key, filters and window their defaults', () => {
    expect(parseSubscribe('{"type":"subscribe","stream":"events"}', maxWindow)).toEqual({
      ok: true,
      subscription: {
        stream: 'events',
        key: null,
        eventName: null,
        channel: null,
        windowSeconds: 86_400,
      },
    });
  });

  it.each([
    ['[]'],
    ['null'],
    ['"subscribe"'],
    ['{"type":"subscribe","stream":"events","key":7}'],
    ['{"type":"subscribe","stream":"events","channel":"x\\u0000"}'],
    [`{"type":"subscribe","stream":"events","channel":"${'x'.repeat(129)}"}`],
    [`{"type":"subscribe","stream":"metrics","window_seconds":${maxWindow + 1}}`],
    ['{"type":"subscribe","stream":"metrics","window_seconds":"60"}'],
    ['{"stream":"metrics"}'],
  ])('refuses %s', (text) => {
    expect(parseSubscribe(text, maxWindow).ok).toBe(false);
  });
});

describe('commit notification payloads', () => {
  const key = (i: number) => `${String(i).padStart(8, '0')}-0000-0000-0000-000000000000`;
  const keys = (from: number, count: number) =>
    Array.from({ length: count }, (_, i) => key(from + i)).join('');

  it('stay under the 8000 bytes NOTIFY takes, and name every transaction and key once', () => {
    // A large transaction, 60 small ones (single events commit a few dozen at a time), another
    // project's, at the largest ids.
    const commits = [
      { projectId: 2_147_483_647, txid: 2 ** 52, keys: keys(0, 1001) },
      ...Array.from({ length: 60 }, (_, i) => ({
        projectId: 2_147_483_647,
        txid: 2 ** 52 + 1 + i,
        keys: keys(2000 + i * 3, 3),
      })),
      { projectId: 7, txid: 2 ** 53 - 1, keys: keys(9000, 5) },
    ];
    const payloads = commitPayloads(commits);
    expect(Math.max(...payloads.map((p) => Buffer.byteLength(p)))).toBeLessThan(8000);
    const parsed = payloads.flatMap((p) => parseCommitPayload(p)!);
    // Per transaction: its project, its total, and its keys in order, across payloads.
    const joined = new Map<number, { projectId: number; total: number; keys: string }>();
    for (const n of parsed) {
      const seen = joined.get(n.txid);
      if (seen) {
        expect([seen.projectId, seen.total]).toEqual([n.projectId, n.total]);
        seen.keys += n.keys;
      } else joined.set(n.txid, { projectId: n.projectId, total: n.total, keys: n.keys });
    }
    expect(
      [...joined].map(([txid, j]) => ({ projectId: j.projectId, txid, keys: j.keys })),
    ).toEqual(commits);
    for (const j of joined.values()) expect(j.total).toBe(j.keys.length / keyLength);
    // Fuller than payloads per transaction (67): 1,186 keys in 10, at most 20 transactions each.
    expect(payloads).toHaveLength(10);
  });

  it('refuse a payload no pulse process of this version sent', () => {
    const k = key(1);
    for (const payload of [
      'hello',
      `x:1.1.1:${k}`,
      `1:x.1.1:${k}`,
      `1:2.x.1:${k}`,
      `1:2.1.2:${k}`,
      `1:2.1.1.1:${k}`,
      `1:2.1:${k}`,
      `3:7.1.1:abc`,
      `3:7.1.1:${k}${k}`,
      `3:7.2.2:${k}`,
      `0:7.1.1:${k}`,
      `01:7.1.1:${k}`,
      `3:7.1.1`,
      `:7.1.1:${k}`,
      `3:${Array.from({ length: 21 }, (_, i) => `${i + 1}.1.1`).join(',')}:${k.repeat(21)}`,
      `${'9'.repeat(20)}:7.1.1:${k}`,
      `3:7:1:${k}`, // the previous version's form
    ])
      expect(parseCommitPayload(payload)).toBeNull();
  });
});

describe('snapshots', () => {
  it('see the transactions committed before they were taken', () => {
    const snapshot = parseSnapshot('100:105:101,103');
    expect([99, 100, 101, 102, 103, 104, 105, 106].filter((t) => snapshot.sees(t))).toEqual([
      99, 100, 102, 104,
    ]);
    expect(parseSnapshot('7:7:').sees(6)).toBe(true);
    expect(parseSnapshot('7:7:').sees(7)).toBe(false);
  });
});

describe('the /live error codes', () => {
  it('are the rows of the /live table in docs/errors.md, with their close codes', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const table = doc.slice(doc.indexOf('## `/live` (WebSocket)'));
    const rows: Record<string, number> = Object.fromEntries(
      [...table.matchAll(/^\|\s*`(\w+)`\s*\|\s*(\d{4})\s*\|/gm)].map((m) => [m[1]!, Number(m[2])]),
    );
    expect(rows).toEqual(liveErrorCodes);
  });
});
