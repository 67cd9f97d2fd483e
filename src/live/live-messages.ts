// The /live wire contract: the one message a client sends (subscribe), checked field by field, and
// the messages the server sends. JSON text frames; a refused message is answered with its code and
// the connection is closed with 1008.

export type LiveStream = 'metrics' | 'events';

export interface Subscription {
  readonly stream: LiveStream;
  /** The read key; null when none was sent (open mode). */
  readonly key: string | null;
  readonly eventName: string | null;
  readonly channel: string | null;
  /** metrics only: the window [as_of − windowSeconds, as_of] the totals count. */
  readonly windowSeconds: number;
}

/** The codes of an error message, with the close code that follows each. */
export const liveErrorCodes = {
  invalid_message: 1008,
  unauthorized: 1008,
  insufficient_scope: 1008,
  too_many_auth_failures: 1008,
  too_many_clients: 1013,
} as const;

export type LiveErrorCode = keyof typeof liveErrorCodes;

export const defaultWindowSeconds = 86_400;
export const minWindowSeconds = 60;
const fields = new Set(['type', 'key', 'stream', 'event_name', 'channel', 'window_seconds']);
const maxKeyLength = 1024;

export type ParsedSubscribe =
  | { readonly ok: true; readonly subscription: Subscription }
  | { readonly ok: false; readonly detail: string };

/** text: at most LIVE_MAX_MESSAGE_BYTES, so JSON.parse is bounded. maxWindowSeconds: the longest
 *  window GET /metrics answers. */
export function parseSubscribe(text: string, maxWindowSeconds: number): ParsedSubscribe {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return refuse('The message is not JSON.');
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message))
    return refuse('The message must be a JSON object.');
  const m = message as Record<string, unknown>;
  const unknown = Object.keys(m).find((name) => !fields.has(name));
  if (unknown !== undefined) return refuse(`Unknown field ${JSON.stringify(unknown)}.`);
  if (m.type !== 'subscribe') return refuse('type must be "subscribe".');
  if (m.stream !== 'metrics' && m.stream !== 'events')
    return refuse('stream must be "metrics" or "events".');
  if (m.key !== undefined && !isText(m.key, maxKeyLength))
    return refuse(`key must be a string of 1 to ${maxKeyLength} characters.`);
  for (const name of ['event_name', 'channel'] as const)
    if (m[name] !== undefined && !isText(m[name], 128))
      return refuse(`${name} must be a string of 1 to 128 characters.`);
  const window = m.window_seconds ?? defaultWindowSeconds;
  if (
    !Number.isInteger(window) ||
    (window as number) < minWindowSeconds ||
    (window as number) > maxWindowSeconds
  )
    return refuse(
      `window_seconds must be an integer from ${minWindowSeconds} to ${maxWindowSeconds}.`,
    );
  return {
    ok: true,
    subscription: {
      stream: m.stream,
      key: (m.key as string | undefined) ?? null,
      eventName: (m.event_name as string | undefined) ?? null,
      channel: (m.channel as string | undefined) ?? null,
      windowSeconds: window as number,
    },
  };
}

function refuse(detail: string): ParsedSubscribe {
  return { ok: false, detail };
}

function isText(value: unknown, maxLength: number): boolean {
  return (
    typeof value === 'string' &&
    value.length > 0 &&
    value.length <= maxLength &&
    !value.includes('\u0000')
  );
}

export function errorMessage(code: LiveErrorCode, detail: string): string {
  return JSON.stringify({ type: 'error', code, detail });
}

/** The events stream is set up: every event committed from now on is sent or counted dropped. */
export function subscribedMessage(stream: LiveStream): string {
  return `{"type":"subscribed","stream":"${stream}"}`;
}

export function droppedMessage(count: number): string {
  return `{"type":"dropped","count":${count}}`;
}

/** line: the event's export line, already JSON. */
export function eventMessage(line: string): string {
  return `{"type":"event","event":${line}}`;
}

export interface Totals {
  readonly count: number;
  readonly unique_users: number;
}

export function metricsMessage(totals: Totals, windowSeconds: number, asOf: number): string {
  return JSON.stringify({
    type: 'metrics',
    totals: { count: totals.count, unique_users: totals.unique_users },
    window_seconds: windowSeconds,
    as_of: asOf,
  });
}
