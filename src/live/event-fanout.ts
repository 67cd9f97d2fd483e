// The events stream: one topic per (project, event_name, channel) subscribed to, each with its own
// rate cap (a token bucket of LIVE_EVENTS_PER_SECOND, one second deep). The members of a topic see
// the same events, so one decision per event and topic serves all of them, and uWS pub/sub writes
// it to every member natively. What the cap leaves out is counted per topic and reported to each
// member once a second, from the count at which it joined: delivered + dropped = committed.
import type { QueuedPool } from '../sql/queued-pool.js';
import type { Logger } from 'pino';
import type { WebSocket } from 'uWebSockets.js';
import { keyLength, splitKeys, type ProjectKeys } from '../sql/commit-notifications.js';
import { readStoredEvents, type StoredEvent } from '../sql/read-stored-events.js';
import { droppedMessage, eventMessage } from './live-messages.js';

export interface EventFanoutDeps {
  readonly pool: QueuedPool;
  readonly publish: (topic: string, message: string) => void;
  readonly eventsPerSecond: number;
  readonly log: Pick<Logger, 'warn'>;
}

/** Keys read in one statement. */
const readBatchKeys = 2000;
/** Keys waiting for a read per project (36 bytes each); past it a commit is not streamed. */
const maxPendingKeys = 100_000;
const reportIntervalMs = 1000;

export class EventsTopic {
  private tokens: number;
  private refilledAtMs = Date.now();
  /** Events of this topic left out since it was created. */
  droppedTotal = 0;
  /** Member → droppedTotal already reported to it (or its value when it joined). */
  readonly members = new Map<WebSocket<unknown>, number>();

  constructor(
    readonly name: string,
    readonly projectId: number,
    readonly eventName: string | null,
    readonly channel: string | null,
    private readonly perSecond: number,
  ) {
    this.tokens = perSecond;
  }

  get unfiltered(): boolean {
    return this.eventName === null && this.channel === null;
  }

  matches(event: StoredEvent): boolean {
    return (
      (this.eventName === null || this.eventName === event.eventName) &&
      (this.channel === null || this.channel === event.channel)
    );
  }

  /** Whole events the cap lets through now. */
  available(nowMs: number): number {
    this.tokens = Math.min(
      this.perSecond,
      this.tokens + ((nowMs - this.refilledAtMs) * this.perSecond) / 1000,
    );
    this.refilledAtMs = nowMs;
    return Math.floor(this.tokens);
  }

  take(nowMs: number): boolean {
    if (this.available(nowMs) < 1) return false;
    this.tokens--;
    return true;
  }
}

export class EventFanout {
  /** project → topic name → topic. */
  private readonly topics = new Map<number, Map<string, EventsTopic>>();
  /** project → keys committed and not yet read. */
  private readonly pending = new Map<number, string[]>();
  /** project → keys being read now (its reader is running while present). */
  private readonly reading = new Map<number, number>();
  private readonly reportTimer: NodeJS.Timeout;
  private overflowWarned = false;

  constructor(private readonly deps: EventFanoutDeps) {
    this.reportTimer = setInterval(() => this.reportDropped(), reportIntervalMs);
    this.reportTimer.unref();
  }

  join(
    ws: WebSocket<unknown>,
    projectId: number,
    eventName: string | null,
    channel: string | null,
  ): EventsTopic {
    const name = `events:${projectId}:${JSON.stringify([eventName, channel])}`;
    let ofProject = this.topics.get(projectId);
    if (!ofProject) this.topics.set(projectId, (ofProject = new Map<string, EventsTopic>()));
    let topic = ofProject.get(name);
    if (!topic) {
      topic = new EventsTopic(name, projectId, eventName, channel, this.deps.eventsPerSecond);
      ofProject.set(name, topic);
    }
    topic.members.set(ws, topic.droppedTotal);
    ws.subscribe(name);
    return topic;
  }

  leave(ws: WebSocket<unknown>, topic: EventsTopic): void {
    topic.members.delete(ws);
    if (topic.members.size > 0) return;
    const ofProject = this.topics.get(topic.projectId);
    ofProject?.delete(topic.name);
    if (ofProject?.size === 0) this.topics.delete(topic.projectId);
  }

  /** A commit notification: its events go to the project's topics, read once for all of them. */
  committed({ projectId, keys }: ProjectKeys): void {
    const ofProject = this.topics.get(projectId);
    if (!ofProject) return;
    const pending = this.pending.get(projectId) ?? [];
    const only = ofProject.size === 1 ? ofProject.values().next().value : undefined;
    let room = Infinity;
    // The project's one topic takes every event: what its cap cannot pass now need not be read.
    // Keys waiting or being read will take tokens when delivered.
    if (only?.unfiltered) {
      const admitted = pending.length + (this.reading.get(projectId) ?? 0);
      room = Math.max(0, only.available(Date.now()) - admitted);
      only.droppedTotal += Math.max(0, keys.length / keyLength - room);
    }
    const list = splitKeys(keys, room);
    if (list.length === 0) return;
    if (pending.length + list.length > maxPendingKeys) {
      if (!this.overflowWarned)
        this.deps.log.warn({ projectId }, 'live: events committed faster than they can be read');
      this.overflowWarned = true;
      return;
    }
    for (const key of list) pending.push(key);
    this.pending.set(projectId, pending);
    if (!this.reading.has(projectId)) void this.readPending(projectId);
  }

  close(): void {
    clearInterval(this.reportTimer);
    this.topics.clear();
    this.pending.clear();
  }

  private async readPending(projectId: number): Promise<void> {
    this.reading.set(projectId, 0);
    try {
      for (;;) {
        const keys = this.pending.get(projectId);
        if (!keys || keys.length === 0) break;
        const batch = keys.splice(0, readBatchKeys);
        this.reading.set(projectId, batch.length);
        let events: StoredEvent[] = [];
        try {
          events = await readStoredEvents(this.deps.pool, projectId, batch);
        } catch (err) {
          this.deps.log.warn({ err: (err as Error).message }, 'live: committed events not read');
        }
        this.reading.set(projectId, 0);
        this.deliver(projectId, events, batch.length - events.length);
      }
    } finally {
      this.reading.delete(projectId);
      this.pending.delete(projectId);
      this.overflowWarned = false;
    }
  }

  /** unread: events named but not read (a failed read); counted as dropped where every event
   *  counts, the only topics where the count is known. */
  private deliver(projectId: number, events: readonly StoredEvent[], unread: number): void {
    const ofProject = this.topics.get(projectId);
    if (!ofProject) return;
    const nowMs = Date.now();
    for (const topic of ofProject.values()) if (topic.unfiltered) topic.droppedTotal += unread;
    for (const event of events) {
      let message: string | undefined;
      for (const topic of ofProject.values()) {
        if (!topic.matches(event)) continue;
        if (topic.take(nowMs))
          this.deps.publish(topic.name, (message ??= eventMessage(event.line)));
        else topic.droppedTotal++;
      }
    }
  }

  private reportDropped(): void {
    for (const ofProject of this.topics.values())
      for (const topic of ofProject.values())
        for (const [ws, reported] of topic.members) {
          if (topic.droppedTotal === reported) continue;
          topic.members.set(ws, topic.droppedTotal);
          ws.send(droppedMessage(topic.droppedTotal - reported));
        }
  }
}
