// A plain WebSocket client of GET /live (the `ws` package): every message it receives, in order,
// and how the connection closed.
import WebSocket from 'ws';
import { waitUntil } from './wait-until.js';

export interface LiveMessage {
  readonly type: string;
  readonly [field: string]: unknown;
}

export interface LiveClient {
  readonly messages: LiveMessage[];
  /** Resolves with the close code once the connection is closed. */
  readonly closed: Promise<number>;
  send(message: unknown): void;
  /** The first message (from the start) that `match` accepts. */
  next(match: (m: LiveMessage) => boolean, timeoutMs?: number): Promise<LiveMessage>;
  close(): void;
}

export async function openLive(baseUrl: string): Promise<LiveClient> {
  const socket = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/live`);
  const messages: LiveMessage[] = [];
  socket.on('message', (data: Buffer) =>
    messages.push(JSON.parse(data.toString('utf8')) as LiveMessage),
  );
  const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return {
    messages,
    closed,
    send: (message) => socket.send(typeof message === 'string' ? message : JSON.stringify(message)),
    next: (match, timeoutMs = 10_000) =>
      waitUntil('a /live message', () => messages.find(match), { timeoutMs }),
    close: () => socket.close(),
  };
}

/** Subscribes to both streams and waits for the events stream's `subscribed` (every event
 *  committed from then on is sent) and the first metrics message. */
export async function subscribeBoth(
  client: LiveClient,
  fields: Record<string, unknown> = {},
): Promise<void> {
  client.send({ type: 'subscribe', stream: 'events', ...fields });
  client.send({ type: 'subscribe', stream: 'metrics', ...fields });
  await client.next((m) => m.type === 'subscribed' && m.stream === 'events');
  await client.next((m) => m.type === 'metrics');
}
