// /live's pure parts: the subscribe message, the commit notification payloads and the error codes
// docs/errors.md lists.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { liveErrorCodes, parseSubscribe } from '../../src/live/live-messages.js';
import { parseSnapshot } from '../../src/live/snapshot.js';
import {
  commitPayloads,
  keyLength,
  parseCommitPayload,
  splitKeys,
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
  const keys = Array.from(
    { length: 1001 },
    (_, i) => `${String(i).padStart(8, '0')}-0000-0000-0000-000000000000`,
  );

  it('stay under the 8000 bytes NOTIFY takes, and carry the transaction and every key once', () => {
    const commit = { projectId: 2_000_000_000, txid: 2 ** 52, keys: keys.join('') };
    const payloads = commitPayloads(commit);
    expect(Math.max(...payloads.map((p) => Buffer.byteLength(p)))).toBeLessThan(8000);
    const parsed = payloads.map((p) => parseCommitPayload(p)!);
    expect(parsed.map((p) => [p.projectId, p.txid, p.total])).toEqual(
      parsed.map(() => [commit.projectId, commit.txid, keys.length]),
    );
    expect(parsed.flatMap((p) => splitKeys(p.keys))).toEqual(keys);
  });

  it('refuse a payload no pulse process of this version sent', () => {
    const key = 'a'.repeat(keyLength);
    for (const payload of [
      'hello',
      `x:1:${key}`,
      `1:x:${key}`,
      `3:7:abc`,
      `3:${key}`,
      `0:7:${key}`,
      `::${key}`,
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
