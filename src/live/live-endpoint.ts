// GET /live: the WebSocket behaviour. A connection is upgraded at once (no key is read from the
// URL); its subscribe messages carry the key, which is checked against the in-memory access rules
// as HTTP checks it. Each connection holds at most one subscription per stream.
import type { QueuedPool } from '../sql/queued-pool.js';
import type { Logger } from 'pino';
import type { TemplatedApp, WebSocket, WebSocketBehavior } from 'uWebSockets.js';
import type { MetricsSources } from '../metrics/answer-metrics.js';
import { MetricsCache } from '../metrics/metrics-cache.js';
import type { MetricsLimits } from '../metrics/metrics-query.js';
import type { CommitNotification } from '../sql/commit-notifications.js';
import { EventFanout, type EventsMembership } from './event-fanout.js';
import {
  errorMessage,
  liveErrorCodes,
  parseSubscribe,
  type LiveErrorCode,
} from './live-messages.js';
import { MetricsFeeds, type MetricsFeed } from './metrics-feeds.js';

/** The peer, for counting failed key attempts per address. */
export type LivePeer = Pick<WebSocket<unknown>, 'getRemoteAddressAsText'>;

/** The key check of the HTTP routes, for the read scope. */
export type LiveAuthorize = (
  peer: LivePeer,
  key: string | null,
) =>
  | { readonly ok: true; readonly projectId: number }
  | { readonly ok: false; readonly code: LiveErrorCode; readonly detail: string };

export interface LiveLimits {
  readonly maxClients: number;
  readonly maxBufferedBytes: number;
  readonly maxMessageBytes: number;
  readonly eventsPerSecond: number;
  readonly catchUpMs: number;
  readonly idleTimeoutSeconds: number;
}

export interface LiveEndpointDeps {
  readonly limits: LiveLimits;
  readonly metricsLimits: MetricsLimits;
  /** For the events' rows. */
  readonly pool: QueuedPool;
  /** For the metrics feeds: the /metrics path, with a cache of their own that keeps nothing (a
   *  feed is recomputed because its totals changed). */
  readonly metricsSources: Omit<MetricsSources, 'cache'>;
  readonly authorize: LiveAuthorize;
  readonly isDraining: () => boolean;
  readonly log: Pick<Logger, 'warn'>;
}

export interface LiveEndpoint {
  /** A commit notification, from any process. */
  committed(commit: CommitNotification): void;
  /** The connection that listens is back: notifications may have been missed. */
  listening(): void;
  /** Connections open now. */
  readonly clients: number;
  /** Closes every connection (1001); returns how many. */
  closeAll(): number;
}

interface LiveClient {
  events: EventsMembership | null;
  metrics: MetricsFeed | null;
  closed: boolean;
}

const decoder = new TextDecoder('utf-8', { fatal: true });
const secondsPerDay = 86_400;

export function registerLive(app: TemplatedApp, deps: LiveEndpointDeps): LiveEndpoint {
  const { limits } = deps;
  const publish = (topic: string, message: string) => void app.publish(topic, message);
  const events = new EventFanout({
    pool: deps.pool,
    publish,
    eventsPerSecond: limits.eventsPerSecond,
    catchUpMs: limits.catchUpMs,
    log: deps.log,
  });
  const uncached = new MetricsCache({ ttlMs: 0, maxKeys: 1 });
  const metrics = new MetricsFeeds({
    sources: { ...deps.metricsSources, cache: uncached },
    limits: deps.metricsLimits,
    publish,
    log: deps.log,
  });
  // GET /metrics refuses a window of more than METRICS_MAX_WINDOW_DAYS, both ends counted.
  const maxWindowSeconds = deps.metricsLimits.maxWindowDays * secondsPerDay - 1;
  const clients = new Set<WebSocket<LiveClient>>();
  const refuse = (ws: WebSocket<LiveClient>, code: LiveErrorCode, detail: string) => {
    ws.getUserData().closed = true;
    ws.send(errorMessage(code, detail));
    ws.end(liveErrorCodes[code], code);
  };
  const subscribe = (ws: WebSocket<LiveClient>, text: string) => {
    const parsed = parseSubscribe(text, maxWindowSeconds);
    if (!parsed.ok) return refuse(ws, 'invalid_message', parsed.detail);
    const { subscription: s } = parsed;
    const client = ws.getUserData();
    if (client[s.stream] !== null)
      return refuse(ws, 'invalid_message', `This connection already has a ${s.stream} stream.`);
    const auth = deps.authorize(ws, s.key);
    if (!auth.ok) return refuse(ws, auth.code, auth.detail);
    if (s.stream === 'events')
      client.events = events.join(ws, auth.projectId, s.eventName, s.channel);
    else client.metrics = metrics.join(ws, auth.projectId, s.eventName, s.channel, s.windowSeconds);
  };
  const behavior: WebSocketBehavior<LiveClient> = {
    // Twice the limit reaches the message handler, which refuses it with a reason; beyond that
    // uWS closes the connection itself (1009) without buffering more.
    maxPayloadLength: limits.maxMessageBytes * 2,
    maxBackpressure: limits.maxBufferedBytes,
    closeOnBackpressureLimit: true,
    idleTimeout: limits.idleTimeoutSeconds,
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => {
      res.upgrade<LiveClient>(
        { events: null, metrics: null, closed: false },
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },
    open: (ws) => {
      clients.add(ws);
      if (deps.isDraining()) ws.end(1001, 'shutting down');
      else if (clients.size > limits.maxClients)
        refuse(ws, 'too_many_clients', 'This server has LIVE_MAX_CLIENTS connections open.');
    },
    message: (ws, message, isBinary) => {
      if (ws.getUserData().closed) return;
      if (isBinary) return refuse(ws, 'invalid_message', 'Send JSON text frames.');
      if (message.byteLength > limits.maxMessageBytes)
        return refuse(
          ws,
          'invalid_message',
          `A message is at most ${limits.maxMessageBytes} bytes (LIVE_MAX_MESSAGE_BYTES).`,
        );
      let text: string;
      try {
        text = decoder.decode(message);
      } catch {
        return refuse(ws, 'invalid_message', 'The message is not UTF-8.');
      }
      subscribe(ws, text);
    },
    close: (ws) => {
      const client = ws.getUserData();
      client.closed = true;
      clients.delete(ws);
      if (client.events) events.leave(client.events);
      if (client.metrics) metrics.leave(ws, client.metrics);
    },
  };
  app.ws<LiveClient>('/live', behavior);
  // uWS skips a publish to a socket over maxBackpressure (it closes on a skipped send() only):
  // a reader that stopped is found here and closed, at most a second and a message later.
  const slowReaderSweep = setInterval(() => {
    for (const ws of clients) if (ws.getBufferedAmount() >= limits.maxBufferedBytes) ws.close();
  }, 1000);
  slowReaderSweep.unref();
  return {
    committed: (commit) => {
      events.committed(commit);
      metrics.committed(commit.projectId);
    },
    listening: () => {
      events.listening();
      metrics.catchUp();
    },
    get clients() {
      return clients.size;
    },
    closeAll: () => {
      clearInterval(slowReaderSweep);
      const open = [...clients];
      for (const ws of open) ws.end(1001, 'shutting down');
      events.close();
      metrics.close();
      uncached.close();
      return open.length;
    },
  };
}
