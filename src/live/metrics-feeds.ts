// The metrics stream: one feed per distinct (project, event_name, channel, window), computed by the
// same path as GET /metrics and published to its members with uWS pub/sub, so the database work
// grows with distinct feeds, never with clients. A feed is computed when it is created and then at
// most once a second (less often when a computation is slow) while its project has commits.
import type { Logger } from 'pino';
import type { WebSocket } from 'uWebSockets.js';
import {
  answerMetrics,
  parseMetricsQuery,
  type MetricsSources,
} from '../metrics/answer-metrics.js';
import type { MetricsLimits } from '../metrics/metrics-query.js';
import { metricsMessage, type Totals } from './live-messages.js';

export interface MetricsFeedsDeps {
  readonly sources: MetricsSources;
  readonly limits: MetricsLimits;
  readonly publish: (topic: string, message: string) => void;
  readonly log: Pick<Logger, 'warn'>;
}

const minIntervalMs = 1000;
/** A feed waits at least this many times its last computation's duration before the next: an
 *  expensive feed (many rows not absorbed by the rollup yet, a busy first hour) takes at most a
 *  third of the time, instead of computing back to back. */
const costFactor = 2;

export class MetricsFeed {
  readonly members = new Set<WebSocket<unknown>>();
  /** Members that have had no message yet. */
  readonly newcomers = new Set<WebSocket<unknown>>();
  dirty = true;
  computing = false;
  startedAtMs = -Infinity;
  lastDurationMs = 0;
  timer: NodeJS.Timeout | undefined;
  lastTotals = '';
  lastMessage: string | null = null;

  constructor(
    readonly name: string,
    readonly projectId: number,
    readonly eventName: string | null,
    readonly channel: string | null,
    readonly windowSeconds: number,
  ) {}
}

export class MetricsFeeds {
  private readonly feeds = new Map<string, MetricsFeed>();
  private readonly byProject = new Map<number, Set<MetricsFeed>>();

  constructor(private readonly deps: MetricsFeedsDeps) {}

  join(
    ws: WebSocket<unknown>,
    projectId: number,
    eventName: string | null,
    channel: string | null,
    windowSeconds: number,
  ): MetricsFeed {
    const name = `metrics:${projectId}:${windowSeconds}:${JSON.stringify([eventName, channel])}`;
    let feed = this.feeds.get(name);
    if (!feed) {
      feed = new MetricsFeed(name, projectId, eventName, channel, windowSeconds);
      this.feeds.set(name, feed);
      let ofProject = this.byProject.get(projectId);
      if (!ofProject) this.byProject.set(projectId, (ofProject = new Set()));
      ofProject.add(feed);
    }
    feed.members.add(ws);
    ws.subscribe(name);
    if (feed.lastMessage !== null) ws.send(feed.lastMessage);
    else {
      feed.newcomers.add(ws);
      this.schedule(feed);
    }
    return feed;
  }

  leave(ws: WebSocket<unknown>, feed: MetricsFeed): void {
    feed.members.delete(ws);
    feed.newcomers.delete(ws);
    if (feed.members.size > 0) return;
    clearTimeout(feed.timer);
    this.feeds.delete(feed.name);
    const ofProject = this.byProject.get(feed.projectId);
    ofProject?.delete(feed);
    if (ofProject?.size === 0) this.byProject.delete(feed.projectId);
  }

  committed(projectId: number): void {
    for (const feed of this.byProject.get(projectId) ?? []) {
      feed.dirty = true;
      this.schedule(feed);
    }
  }

  /** Commits may have gone unannounced: every feed is computed again. */
  catchUp(): void {
    for (const projectId of this.byProject.keys()) this.committed(projectId);
  }

  close(): void {
    for (const feed of this.feeds.values()) clearTimeout(feed.timer);
    this.feeds.clear();
    this.byProject.clear();
  }

  private schedule(feed: MetricsFeed): void {
    if (feed.computing || feed.timer !== undefined || this.feeds.get(feed.name) !== feed) return;
    const intervalMs = Math.max(minIntervalMs, costFactor * feed.lastDurationMs);
    const waitMs = Math.max(0, feed.startedAtMs + intervalMs - Date.now());
    feed.timer = setTimeout(() => {
      feed.timer = undefined;
      void this.compute(feed);
    }, waitMs);
  }

  private async compute(feed: MetricsFeed): Promise<void> {
    if (!feed.dirty) return;
    feed.dirty = false;
    feed.computing = true;
    feed.startedAtMs = Date.now();
    try {
      const asOf = Math.floor(feed.startedAtMs / 1000);
      const totals = await this.totals(feed, asOf);
      if (totals === null) feed.dirty = true;
      else this.send(feed, totals, asOf);
    } catch (err) {
      feed.dirty = true;
      this.deps.log.warn({ err: (err as Error).message }, 'live: metrics not computed');
    } finally {
      feed.computing = false;
      feed.lastDurationMs = Date.now() - feed.startedAtMs;
    }
    if (feed.dirty) this.schedule(feed);
  }

  /** GET /metrics?from=asOf−window&to=asOf with the feed's filters. */
  private async totals(feed: MetricsFeed, asOf: number): Promise<Totals | null> {
    const params = new URLSearchParams({
      from: String(asOf - feed.windowSeconds),
      to: String(asOf),
    });
    if (feed.eventName !== null) params.set('event_name', feed.eventName);
    if (feed.channel !== null) params.set('channel', feed.channel);
    const parsed = parseMetricsQuery(params.toString(), asOf, this.deps.limits);
    if (!parsed.ok) {
      this.deps.log.warn({ feed: feed.name }, 'live: a feed that GET /metrics would refuse');
      return null;
    }
    const { answer } = await answerMetrics(this.deps.sources, feed.projectId, parsed.query);
    return (JSON.parse(answer.dataJson) as { totals: Totals }).totals;
  }

  /** Unchanged totals go only to members that have had nothing yet. */
  private send(feed: MetricsFeed, totals: Totals, asOf: number): void {
    if (this.feeds.get(feed.name) !== feed) return;
    const message = metricsMessage(totals, feed.windowSeconds, asOf);
    const key = `${totals.count}/${totals.unique_users}`;
    feed.lastMessage = message;
    if (key !== feed.lastTotals) this.deps.publish(feed.name, message);
    else for (const ws of feed.newcomers) ws.send(message);
    feed.lastTotals = key;
    feed.newcomers.clear();
  }
}
