// A bulk request whose body text the test writes itself: JSON.stringify cannot produce `1e400`
// (it writes null) and throws on nesting past ~10⁴ levels, and hostile input needs both.
import type { RequestRecord } from '../../helpers/load.js';

/** Placeholder a test puts in an event value, replaced by raw JSON text in the body. */
export const rawJsonMarker = '__raw_json_marker__';

export function bulkBodyWithRaw(events: readonly unknown[], raw: string): string {
  return JSON.stringify({ events }).replace(JSON.stringify(rawJsonMarker), raw);
}

/** Same classification as test/helpers/load.ts sendBulk (202 ok, <500 fail, else in doubt). */
export async function sendRawBulk(
  url: string,
  body: string,
  ids: readonly string[],
  requestTimeoutMs: number,
): Promise<RequestRecord> {
  const sentAt = Date.now();
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(requestTimeoutMs),
    });
    const text = await res.text();
    let parsed: Record<string, unknown> | undefined;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      parsed = undefined;
    }
    return {
      ids,
      outcome: res.status === 202 ? 'ok' : res.status < 500 ? 'fail' : 'inDoubt',
      status: res.status,
      code: typeof parsed?.code === 'string' ? parsed.code : undefined,
      retryAfter: res.headers.get('retry-after'),
      contentType: res.headers.get('content-type'),
      body: parsed,
      error: undefined,
      sentAt,
      answeredAt: Date.now(),
    };
  } catch (err) {
    const cause = (err as Error & { cause?: { code?: string } }).cause;
    return {
      ids,
      outcome: 'inDoubt',
      status: 0,
      code: undefined,
      retryAfter: null,
      contentType: null,
      body: undefined,
      error: cause?.code ?? (err as Error).name,
      sentAt,
      answeredAt: Date.now(),
    };
  }
}
