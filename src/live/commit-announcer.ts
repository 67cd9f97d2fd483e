// Sends each committed batch's keys on the commit channel, off the write path: the writer has
// committed and answered already. Batches that commit within a few milliseconds of each other, or
// while a NOTIFY is under way, go together in one statement, so the statements sent grow with
// time, not with batches.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import {
  commitPayloads,
  keyLength,
  notifyCommits,
  type ProjectKeys,
} from '../sql/commit-notifications.js';
import type { NotificationConnection } from '../sql/notification-connection.js';

/** Keys waiting: past it, commits are not announced and /live subscribers miss them, rather
 *  than this process holding an unbounded backlog (36 bytes a key). */
const maxWaitingKeys = 400_000;
/** Payloads per statement: each is one NOTIFY, held in memory by Postgres until commit. */
const payloadsPerStatement = 500;
/** How long announcements gather before a statement goes: single events commit in batches of a
 *  few, and a statement per batch cost the write path a tenth of its CPU per event. */
const gatherMs = 20;

export class CommitAnnouncer {
  /** project → the keys committed and not announced yet, one after another. */
  private waiting = new Map<number, string>();
  private waitingKeys = 0;
  private sending: Promise<void> | null = null;
  private overflowWarned = false;

  constructor(
    private readonly connection: NotificationConnection,
    private readonly log: Pick<Logger, 'warn'>,
  ) {}

  announce(committed: readonly ProjectKeys[]): void {
    const keys = committed.reduce((n, c) => n + c.keys.length / keyLength, 0);
    if (this.waitingKeys + keys > maxWaitingKeys) {
      if (!this.overflowWarned) this.log.warn('live: commits announced slower than made; skipped');
      this.overflowWarned = true;
      return;
    }
    for (const { projectId, keys: k } of committed)
      this.waiting.set(projectId, (this.waiting.get(projectId) ?? '') + k);
    this.waitingKeys += keys;
    this.sending ??= this.sendWaiting();
  }

  /** Resolves once everything announced so far is sent (or lost with the connection). */
  async flush(): Promise<void> {
    await this.sending;
  }

  private async sendWaiting(): Promise<void> {
    while (this.waitingKeys > 0) {
      await sleep(gatherMs);
      const payloads = commitPayloads(
        [...this.waiting].map(([projectId, keys]) => ({ projectId, keys })),
      );
      this.waiting = new Map();
      this.waitingKeys = 0;
      for (let at = 0; at < payloads.length; at += payloadsPerStatement) {
        const statement = payloads.slice(at, at + payloadsPerStatement);
        await this.connection.send((client) => notifyCommits(client, statement));
      }
    }
    this.overflowWarned = false;
    this.sending = null;
  }
}
