// The events stream: one topic per (project, event_name, channel) subscribed to, each with its own
// rate cap (a token bucket of LIVE_EVENTS_PER_SECOND, one second deep). The members of a topic see
// the same events, so one decision per event and topic serves all of them, and uWS pub/sub writes
// it to every member natively. What the cap leaves out is counted per topic and reported to each
// member once a second, from the count at which it joined: delivered + dropped = committed.
//
// Each project with subscribers has one reader. It reads the rows each commit notification names,
// by key, and remembers the transaction. When notifications may have been missed (the listening
// connection came back, too many waited), and on a timer, the readers catch up: they read the rows
// committed since their last catch-up's snapshot by transactions they have not seen. So a lost
// notification delays its rows, and no row is sent twice. A subscriber joins between two reads
// and is then told `subscribed`: every row committed after that reaches its topic once.
import type { Logger } from 'pino';
import type { WebSocket } from 'uWebSockets.js';
import { keyLength, splitKeys, type CommitNotification } from '../sql/commit-notifications.js';
import type { Snapshot } from '../sql/pg-snapshot.js';
import type { QueuedPool } from '../sql/queued-pool.js';
import {
  countUnseenByProject,
  countUnseenEvents,
  currentSnapshot,
  readEventsByKey,
  readUnseenEvents,
  type CommittedEvent,
  type UnseenRows,
} from '../sql/read-committed-events.js';
import { droppedMessage, eventMessage, subscribedMessage } from './live-messages.js';

export interface EventFanoutDeps {
  readonly pool: QueuedPool;
  readonly publish: (topic: string, message: string) => void;
  readonly eventsPerSecond: number;
  /** How often the readers catch up on a timer (LIVE_CATCH_UP_MS): half how late an event whose
   *  notification never came arrives at most, and how many seen transactions a reader remembers. */
  readonly catchUpMs: number;
  readonly log: Pick<Logger, 'warn'>;
}

/** Keys read in one statement. */
const readBatchKeys = 2000;
/** Rows a catch-up builds lines for at most; more than the caps can pass now are counted. */
const catchUpRows = 2000;
/** Keys waiting for a read per project (36 bytes each); past it, the catch-up takes them. */
const maxPendingKeys = 100_000;
const reportIntervalMs = 1000;
/** After a failed read, the next attempt: the rows wait in the table meanwhile. */
const retryMs = 1000;

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

  matches(event: { readonly eventName: string; readonly channel: string | null }): boolean {
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

/** A subscription to the events stream: waiting for its project's reader, then in a topic. */
export interface EventsMembership {
  readonly ws: WebSocket<unknown>;
  readonly projectId: number;
  readonly eventName: string | null;
  readonly channel: string | null;
  topic: EventsTopic | null;
}

/** A catch-up's rows, kept until they are sent: a failed catch-up is read again whole. */
type CatchUp = Pick<UnseenRows, 'since' | 'until' | 'seen'>;

interface ProjectReader {
  /** The snapshot of the last catch-up (or of the start); null until the first is known. What it
   *  sees is the catch-ups' to send, the rest the notifications'. */
  since: Snapshot | null;
  /** Transactions whose rows were taken from their notifications → the first key of each
   *  notification read (a large transaction's keys come in several). Kept while `since` does not
   *  see them, or while some of their notifications have not arrived. */
  seen: Map<number, string>;
  /** Seen transactions → their keys whose notifications have not arrived yet. */
  incomplete: Map<number, number>;
  /** Notifications not read yet, and their transactions. */
  pending: CommitNotification[];
  pendingKeys: number;
  pendingTxids: Set<number>;
  /** Transactions whose notifications were left to the catch-up (too many waited). */
  skipped: Set<number>;
  /** The catch-up taken and not sent yet. */
  owed: CatchUp | null;
  /** The snapshot of the last timed catch-up: where the next one ends. */
  next: Snapshot | null;
  reading: boolean;
  /** Memberships to add once no read is under way. */
  readonly joining: EventsMembership[];
  /** The next attempt at the first snapshot, when one failed. */
  retry?: NodeJS.Timeout;
}

export class EventFanout {
  /** project → topic name → topic. */
  private readonly topics = new Map<number, Map<string, EventsTopic>>();
  private readonly readers = new Map<number, ProjectReader>();
  private readonly reportTimer: NodeJS.Timeout;
  private readonly catchUpTimer: NodeJS.Timeout;
  /** now: up to the present (notifications were missed); timed: up to the previous timed
   *  catch-up's snapshot, whose commits' notifications have all arrived unless lost, so under
   *  steady load it finds nothing to read instead of the rows whose notifications are on their
   *  way. */
  private catchUpWanted: 'now' | 'timed' | null = null;
  private catchingUp = false;
  private catchUpRetry?: NodeJS.Timeout;
  private overflowWarned = false;

  constructor(private readonly deps: EventFanoutDeps) {
    this.reportTimer = setInterval(() => this.reportDropped(), reportIntervalMs);
    this.reportTimer.unref();
    this.catchUpTimer = setInterval(() => {
      if (this.readers.size === 0) return;
      this.catchUpWanted ??= 'timed';
      void this.runCatchUps();
    }, deps.catchUpMs);
    this.catchUpTimer.unref();
  }

  join(
    ws: WebSocket<unknown>,
    projectId: number,
    eventName: string | null,
    channel: string | null,
  ): EventsMembership {
    const membership: EventsMembership = { ws, projectId, eventName, channel, topic: null };
    let reader = this.readers.get(projectId);
    if (!reader) {
      reader = {
        since: null,
        seen: new Map(),
        incomplete: new Map(),
        pending: [],
        pendingKeys: 0,
        pendingTxids: new Set(),
        skipped: new Set(),
        owed: null,
        next: null,
        reading: false,
        joining: [],
      };
      this.readers.set(projectId, reader);
      void this.start(projectId, reader);
    }
    reader.joining.push(membership);
    this.admit(projectId, reader);
    return membership;
  }

  leave(membership: EventsMembership): void {
    const { projectId, topic, ws } = membership;
    const reader = this.readers.get(projectId);
    if (!topic) {
      const at = reader?.joining.indexOf(membership) ?? -1;
      if (at !== -1) reader!.joining.splice(at, 1);
    } else {
      topic.members.delete(ws);
      const ofProject = this.topics.get(projectId);
      if (topic.members.size === 0) ofProject?.delete(topic.name);
      if (ofProject?.size === 0) this.topics.delete(projectId);
    }
    if (reader && reader.joining.length === 0 && !this.topics.has(projectId)) {
      clearTimeout(reader.retry);
      this.readers.delete(projectId);
    }
  }

  /** A commit notification: its rows go to the project's topics, read once for all of them. */
  committed(commit: CommitNotification): void {
    const reader = this.readers.get(commit.projectId);
    if (!reader) return;
    const keys = commit.keys.length / keyLength;
    // A transaction is read whole by one path: the rest of one already taken is taken too.
    const taken = reader.pendingTxids.has(commit.txid) || reader.seen.has(commit.txid);
    if (reader.skipped.has(commit.txid) || (!taken && reader.pendingKeys + keys > maxPendingKeys)) {
      if (!this.overflowWarned)
        this.deps.log.warn(
          { projectId: commit.projectId },
          'live: events committed faster than they can be read; catching up',
        );
      this.overflowWarned = true;
      reader.skipped.add(commit.txid);
      this.catchUp();
    } else {
      reader.pending.push(commit);
      reader.pendingKeys += keys;
      reader.pendingTxids.add(commit.txid);
    }
    this.kick(commit.projectId, reader);
  }

  /** The connection that listens is back after a loss. Notifications may have been missed: every
   *  reader catches up. A transaction whose notifications stopped part way is not (the catch-up
   *  passes over seen transactions): its missing keys are counted as dropped where every event
   *  counts, as a failed read's are. */
  listening(): void {
    for (const [projectId, reader] of this.readers) {
      for (const topic of this.topicsOf(projectId))
        if (topic.unfiltered)
          for (const missing of reader.incomplete.values()) topic.droppedTotal += missing;
      reader.incomplete.clear();
    }
    this.catchUp();
  }

  /** Every reader catches up now. */
  catchUp(): void {
    if (this.readers.size === 0) return;
    this.catchUpWanted = 'now';
    void this.runCatchUps();
  }

  close(): void {
    clearInterval(this.reportTimer);
    clearInterval(this.catchUpTimer);
    clearTimeout(this.catchUpRetry);
    for (const reader of this.readers.values()) clearTimeout(reader.retry);
    this.readers.clear();
    this.topics.clear();
  }

  private kick(projectId: number, reader: ProjectReader): void {
    if (reader.since !== null && !reader.reading && reader.pending.length > 0)
      void this.read(projectId, reader);
  }

  private async start(projectId: number, reader: ProjectReader): Promise<void> {
    try {
      reader.since = await currentSnapshot(this.deps.pool);
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'live: no snapshot to read events from');
      if (this.readers.get(projectId) === reader)
        reader.retry = setTimeout(() => {
          reader.retry = undefined;
          void this.start(projectId, reader);
        }, retryMs);
      return;
    }
    this.admit(projectId, reader);
    this.kick(projectId, reader);
  }

  /** Puts waiting memberships in their topics, between two reads: a topic then takes every row
   *  committed after its members were told `subscribed`. */
  private admit(projectId: number, reader: ProjectReader): void {
    if (reader.since === null || reader.reading || this.readers.get(projectId) !== reader) return;
    for (const membership of reader.joining.splice(0)) {
      const { ws, eventName, channel } = membership;
      const name = `events:${projectId}:${JSON.stringify([eventName, channel])}`;
      let ofProject = this.topics.get(projectId);
      if (!ofProject) this.topics.set(projectId, (ofProject = new Map<string, EventsTopic>()));
      let topic = ofProject.get(name);
      if (!topic) {
        topic = new EventsTopic(name, projectId, eventName, channel, this.deps.eventsPerSecond);
        ofProject.set(name, topic);
      }
      topic.members.set(ws, topic.droppedTotal);
      membership.topic = topic;
      ws.subscribe(name);
      ws.send(subscribedMessage('events'));
    }
  }

  private async read(projectId: number, reader: ProjectReader): Promise<void> {
    reader.reading = true;
    while (reader.pending.length > 0 && this.readers.get(projectId) === reader) {
      const commits = reader.pending;
      reader.pending = [];
      reader.pendingKeys = 0;
      reader.pendingTxids.clear();
      await this.readNotified(projectId, reader, commits);
    }
    reader.reading = false;
    this.overflowWarned = false;
    this.admit(projectId, reader);
  }

  /** Every reader's catch-up at once: one statement counts, per project, the rows committed since
   *  its last catch-up by transactions it has not seen (one scan of the new rows for the process,
   *  however many projects), and only a project with some reads them. Runs beside the
   *  notifications' reads: from the moment its snapshot is taken, they leave what it sees to it,
   *  so a slow catch-up holds up no notified row. */
  private async runCatchUps(): Promise<void> {
    if (this.catchingUp || this.catchUpRetry !== undefined) return;
    this.catchingUp = true;
    try {
      while (this.catchUpWanted !== null || [...this.readers.values()].some((r) => r.owed)) {
        const wanted = this.catchUpWanted;
        if (wanted) {
          this.catchUpWanted = null;
          const now = await currentSnapshot(this.deps.pool);
          for (const reader of this.readers.values()) {
            if (reader.since === null || reader.owed) continue;
            const until = wanted === 'now' ? now : reader.next;
            reader.next = wanted === 'now' ? null : now;
            if (until === null) continue;
            const seen = [...reader.seen.keys()];
            reader.owed = { since: reader.since, until, seen };
            reader.since = until;
            for (const txid of seen)
              if (until.sees(txid) && !reader.incomplete.has(txid)) reader.seen.delete(txid);
            for (const txid of reader.skipped) if (until.sees(txid)) reader.skipped.delete(txid);
          }
        }
        const owing = [...this.readers].filter(([, r]) => r.owed !== null);
        const unseen = await countUnseenByProject(
          this.deps.pool,
          owing.map(([projectId, r]) => ({ projectId, ...r.owed! })),
        );
        for (const [projectId, reader] of owing) {
          if (this.readers.get(projectId) !== reader) continue;
          if (unseen.has(projectId)) await this.readUnseen(projectId, reader.owed!);
          reader.owed = null;
        }
      }
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'live: committed events not read');
      this.catchUpRetry = setTimeout(() => {
        this.catchUpRetry = undefined;
        void this.runCatchUps();
      }, retryMs);
    } finally {
      this.catchingUp = false;
    }
  }

  /** The rows notifications named, of transactions neither seen nor caught up on. */
  private async readNotified(
    projectId: number,
    reader: ProjectReader,
    commits: readonly CommitNotification[],
  ): Promise<void> {
    const topics = this.topicsOf(projectId);
    const only = topics.length === 1 && topics[0]!.unfiltered ? topics[0]! : null;
    // The project's one topic takes every event: what its cap cannot pass now need not be read.
    let room = only ? only.available(Date.now()) : Infinity;
    const keys: string[] = [];
    for (const commit of commits) {
      const seen = reader.seen.get(commit.txid);
      // What the last catch-up's snapshot sees was its to read, but for transactions seen before.
      if (seen === undefined && reader.since!.sees(commit.txid)) continue;
      const first = commit.keys.slice(0, keyLength);
      if (seen?.includes(first)) continue; // a notification sent again
      reader.seen.set(commit.txid, (seen ?? '') + first);
      const count = commit.keys.length / keyLength;
      const missing = (reader.incomplete.get(commit.txid) ?? commit.total) - count;
      if (missing > 0) reader.incomplete.set(commit.txid, missing);
      else reader.incomplete.delete(commit.txid);
      const read = Math.min(count, room);
      room -= read;
      if (only) only.droppedTotal += count - read;
      for (const key of splitKeys(commit.keys, read)) keys.push(key);
    }
    for (let at = 0; at < keys.length; at += readBatchKeys) {
      const batch = keys.slice(at, at + readBatchKeys);
      let events: CommittedEvent[] = [];
      try {
        events = await readEventsByKey(this.deps.pool, projectId, batch);
      } catch (err) {
        this.deps.log.warn({ err: (err as Error).message }, 'live: committed events not read');
      }
      // Events named but not read (a failed read) are counted as dropped where every event
      // counts, the only topics where the count is known.
      for (const topic of topics)
        if (topic.unfiltered) topic.droppedTotal += batch.length - events.length;
      this.deliver(topics, events);
    }
  }

  /** The rows whose notification never arrived. Counted before anything is sent: a catch-up
   *  that fails is read again whole. */
  private async readUnseen(projectId: number, owed: CatchUp): Promise<void> {
    const topics = this.topicsOf(projectId);
    const where: UnseenRows = {
      projectId,
      ...owed,
      filters: topics.some((t) => t.unfiltered)
        ? null
        : { eventNames: topics.map((t) => t.eventName), channels: topics.map((t) => t.channel) },
    };
    const nowMs = Date.now();
    const passable = Math.min(
      catchUpRows,
      topics.reduce((n, t) => n + t.available(nowMs), 0),
    );
    // One row more than passable tells whether rows were left.
    const events = await readUnseenEvents(this.deps.pool, where, passable + 1);
    const counts = events.length > passable ? await countUnseenEvents(this.deps.pool, where) : null;
    const matched = this.deliver(topics, events);
    if (counts)
      topics.forEach((topic, t) => {
        const committed = counts.reduce((n, c) => (topic.matches(c) ? n + c.events : n), 0);
        topic.droppedTotal += committed - matched[t]!;
      });
  }

  private topicsOf(projectId: number): EventsTopic[] {
    return [...(this.topics.get(projectId)?.values() ?? [])];
  }

  /** Each event to every topic it matches, as its cap allows; returns how many each matched. */
  private deliver(topics: readonly EventsTopic[], events: readonly CommittedEvent[]): number[] {
    const matched = topics.map(() => 0);
    const nowMs = Date.now();
    for (const event of events) {
      let message: string | undefined;
      topics.forEach((topic, t) => {
        if (!topic.matches(event)) return;
        matched[t]!++;
        if (topic.take(nowMs))
          this.deps.publish(topic.name, (message ??= eventMessage(event.line)));
        else topic.droppedTotal++;
      });
    }
    return matched;
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
