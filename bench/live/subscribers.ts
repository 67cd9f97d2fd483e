// The /live side of the bench: many `ws` clients subscribed to the load's project, and two probe
// clients on a project of their own whose events are posted one at a time, so each probe's ack
// time is known and the arrival of its event (and of the totals counting it) can be timed.
import WebSocket from 'ws';

export interface Subscribers {
  /** Arrival time (performance.now()) of each probe event, by event_id. */
  readonly probeEventArrivals: Map<string, number>;
  /** Each metrics message of the probe project: its count and arrival time. */
  readonly probeTotals: { readonly count: number; readonly atMs: number }[];
  /** Messages received by the load's subscribers, by type. */
  readonly received: Record<string, number>;
  close(): Promise<void>;
}

export interface SubscriberCounts {
  readonly metrics: number;
  readonly events: number;
}

function open(url: string, subscribe: object[], onMessage: (data: Buffer) => void) {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/live`);
  socket.on('message', onMessage);
  return new Promise<WebSocket>((resolve, reject) => {
    socket.once('open', () => {
      for (const message of subscribe) socket.send(JSON.stringify(message));
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

export async function openSubscribers(
  url: string,
  counts: SubscriberCounts,
  loadKey: string,
  probeKey: string,
): Promise<Subscribers> {
  const received: Record<string, number> = {};
  const probeEventArrivals = new Map<string, number>();
  const probeTotals: { count: number; atMs: number }[] = [];
  // The load's messages are counted by type without parsing them: this process shares the
  // server's cores, and parsing 10,000 messages a second would be the bench's cost, not pulse's.
  const typeStart = '{"type":"'.length;
  const count = (data: Buffer) => {
    const type = data.toString('latin1', typeStart, data.indexOf(34, typeStart));
    received[type] = (received[type] ?? 0) + 1;
  };
  const sockets: WebSocket[] = [];
  const subscribe = (stream: string, key: string) => ({ type: 'subscribe', stream, key });
  for (let i = 0; i < counts.metrics; i++)
    sockets.push(await open(url, [subscribe('metrics', loadKey)], count));
  for (let i = 0; i < counts.events; i++)
    sockets.push(await open(url, [subscribe('events', loadKey)], count));
  sockets.push(
    await open(url, [subscribe('events', probeKey), subscribe('metrics', probeKey)], (data) => {
      const atMs = performance.now();
      const m = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
      if (m.type === 'event')
        probeEventArrivals.set((m.event as { event_id: string }).event_id, atMs);
      if (m.type === 'metrics')
        probeTotals.push({ count: (m.totals as { count: number }).count, atMs });
    }),
  );
  // Every metrics subscriber has had its first message: the subscriptions are all in place.
  const giveUpAt = Date.now() + 60_000;
  while ((received.metrics ?? 0) < counts.metrics || probeTotals.length === 0) {
    if (Date.now() > giveUpAt) throw new Error('the metrics subscribers got no first message');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  for (const type of Object.keys(received)) received[type] = 0;
  return {
    probeEventArrivals,
    probeTotals,
    received,
    close: async () => {
      for (const socket of sockets) socket.close();
      await Promise.all(
        sockets.map(
          (s) =>
            new Promise((resolve) =>
              s.readyState === s.CLOSED ? resolve(0) : s.once('close', resolve),
            ),
        ),
      );
    },
  };
}

/** Posts one probe event every intervalMs, each after the previous one's ack, until stopped. */
export function postProbes(
  url: string,
  key: string,
  intervalMs: number,
): { acks: { id: string; atMs: number }[]; stop: () => Promise<void> } {
  const acks: { id: string; atMs: number }[] = [];
  let stopped = false;
  const loop = (async () => {
    for (let n = 0; !stopped; n++) {
      const id = `probe-${process.pid}-${Date.now()}-${n}`;
      const res = await fetch(`${url}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': key },
        body: JSON.stringify({
          event_id: id,
          event_name: 'probe',
          user_id: 'probe',
          timestamp: Math.floor(Date.now() / 1000),
        }),
      });
      await res.text();
      if (res.status === 202) acks.push({ id, atMs: performance.now() });
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    acks,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

/** ms from each probe's ack to its event's arrival, and to the first totals counting it. */
export function probeLatencies(
  acks: readonly { id: string; atMs: number }[],
  subscribers: Subscribers,
): { events: number[]; metrics: number[]; missing: number } {
  const events: number[] = [];
  const metrics: number[] = [];
  let missing = 0;
  const startCount = subscribers.probeTotals[0]?.count ?? 0;
  acks.forEach((ack, i) => {
    const arrival = subscribers.probeEventArrivals.get(ack.id);
    if (arrival === undefined) missing++;
    else events.push(arrival - ack.atMs);
    // Probes are posted one after another, so the (i + 1)-th commit is this one.
    const counted = subscribers.probeTotals.find((t) => t.count >= startCount + i + 1);
    if (counted) metrics.push(Math.max(0, counted.atMs - ack.atMs));
  });
  return { events, metrics, missing };
}
