// /live's pure parts: the subscribe message, the commit notification payloads and the error codes
// docs/errors.md lists.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { liveErrorCodes, parseSubscribe } from '../../src/live/live-messages.js';
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

  it('stay under the 8000 bytes NOTIFY takes, and carry every key once', () => {
    const payloads = commitPayloads([{ projectId: 2_000_000_000, keys: keys.join('') }]);
    expect(Math.max(...payloads.map((p) => Buffer.byteLength(p)))).toBeLessThan(8000);
    const parsed = payloads.map((p) => parseCommitPayload(p)!);
    expect(parsed.every((p) => p.projectId === 2_000_000_000)).toBe(true);
    expect(parsed.flatMap((p) => splitKeys(p.keys))).toEqual(keys);
  });

  it('refuses a payload no pulse process sent', () => {
    expect(parseCommitPayload('hello')).toBeNull();
    expect(parseCommitPayload(`x:${'a'.repeat(keyLength)}`)).toBeNull();
    expect(parseCommitPayload('3:abc')).toBeNull();
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
