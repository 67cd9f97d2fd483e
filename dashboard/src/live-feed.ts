// The live panel: one WebSocket to /live with two subscriptions, `events` (the newest events as they
// commit) and `metrics` (the totals of the view's window, pushed when they change).
import { refusalMessage } from './metrics-client.js';
import { storedReadKey, forgetReadKey, type KeyPrompt } from './read-key.js';
import { formatCount } from './tables.js';

export interface LiveView {
  readonly windowSeconds: number;
  readonly windowLabel: string;
  readonly eventName: string;
  readonly channel: string;
  readonly tz: string;
  /** Called with each metrics push; the totals of [as_of − window, as_of]. */
  readonly onTotals: (totals: { count: number; unique_users: number }) => void;
}

interface LiveEvent {
  readonly event_name: string;
  readonly user_id: string;
  readonly timestamp: number;
  readonly channel?: string;
}

type LiveMessage =
  | { type: 'metrics'; totals: { count: number; unique_users: number } }
  | { type: 'event'; event: LiveEvent }
  | { type: 'dropped'; count: number }
  | { type: 'subscribed'; stream: string }
  | { type: 'error'; code: string; detail?: string };

/** Newest first; older ones fall off the end. */
const shownEvents = 50;
const reconnectDelayMs = { first: 1000, max: 30_000 };

export function createLiveFeed(prompt: KeyPrompt) {
  const state = document.getElementById('live-state')!;
  const list = document.getElementById('live-events')!;
  const dropped = document.getElementById('live-dropped')!;
  let socket: WebSocket | null = null;
  let view: LiveView | null = null;
  let retryMs = reconnectDelayMs.first;
  let retryTimer: number | undefined;
  let droppedTotal = 0;

  function connect(): void {
    if (view === null) return;
    const current = view;
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/live`;
    const ws = new WebSocket(url);
    socket = ws;
    let refused = false;
    const key = storedReadKey();
    ws.addEventListener('open', () => {
      state.textContent = 'connected';
      retryMs = reconnectDelayMs.first;
      const common = {
        type: 'subscribe',
        ...(key === null ? {} : { key }),
        ...(current.eventName ? { event_name: current.eventName } : {}),
        ...(current.channel ? { channel: current.channel } : {}),
      };
      ws.send(JSON.stringify({ ...common, stream: 'events' }));
      ws.send(
        JSON.stringify({ ...common, stream: 'metrics', window_seconds: current.windowSeconds }),
      );
    });
    ws.addEventListener('message', (message) => {
      const data = JSON.parse(String(message.data)) as LiveMessage;
      if (data.type === 'metrics') {
        document.getElementById('live-count')!.textContent = formatCount(data.totals.count);
        document.getElementById('live-users')!.textContent = formatCount(data.totals.unique_users);
        current.onTotals(data.totals);
      } else if (data.type === 'event') {
        showEvent(data.event, current.tz);
      } else if (data.type === 'dropped') {
        droppedTotal += data.count;
        dropped.textContent = `${formatCount(droppedTotal)} events not shown (over the live rate cap)`;
      } else if (data.type !== 'error') {
        // `subscribed`, or a message of a newer server: nothing to show.
      } else if (data.code === 'unauthorized' || data.code === 'insufficient_scope') {
        refused = true;
        state.textContent = 'waiting for a read key';
        if (key !== null) forgetReadKey(key);
        // Without a key sent there is nothing to report: /metrics's refusal says what is needed.
        void prompt.ask(key === null ? undefined : refusalMessage(data.code)).then(() => {
          if (socket === ws) connect();
        });
      } else {
        state.textContent = `error: ${data.detail ?? data.code}`;
      }
    });
    ws.addEventListener('close', () => {
      if (socket !== ws || refused) return;
      state.textContent = `disconnected; retrying in ${Math.round(retryMs / 1000)} s`;
      retryTimer = window.setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, reconnectDelayMs.max);
    });
  }

  function showEvent(event: LiveEvent, tz: string): void {
    const time = new Date(event.timestamp * 1000).toLocaleTimeString(undefined, { timeZone: tz });
    const item = document.createElement('li');
    item.textContent = `${time}  ${event.event_name}  ${event.user_id}${event.channel ? `  ${event.channel}` : ''}`;
    list.prepend(item);
    while (list.childElementCount > shownEvents) list.lastElementChild!.remove();
  }

  /** (Re)subscribes for a view: its filters and its window. */
  return function follow(next: LiveView): void {
    view = next;
    document.getElementById('live-window')!.textContent = next.windowLabel;
    window.clearTimeout(retryTimer);
    const previous = socket;
    socket = null;
    previous?.close();
    connect();
  };
}
