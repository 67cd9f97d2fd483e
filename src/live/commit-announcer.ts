// Sends each committed batch's keys on the commit channel, off the write path: the writer has
// committed and answered already. Batches that commit within a few milliseconds of each other, or
// while a NOTIFY is under way, go together in one statement, so the statements sent grow with
// time, not with batches. What is not sent (the connection down, or too much waiting) reaches
// subscribers later, through their readers' catch-up (event-fanout.ts); what failed to send is
// sent again once the connection is back, so they need not wait for it.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import {
  commitPayloads,
  keyLength,
  notifyCommits,
  type ProjectCommit,
} from '../sql/commit-notifications.js';
import type { NotificationConnection } from '../sql/notification-connection.js';

/** Keys waiting, or kept to be sent again: past it, commits are left to the readers' catch-up
 *  rather than this process holding an unbounded backlog (36 bytes a key). */
const maxWaitingKeys = 400_000;
/** How long announcements gather before a statement goes: single events commit in batches of a
 *  few, and a statement per batch cost the write path a tenth of its CPU per event. */
const gatherMs = 20;

export class CommitAnnouncer {
  private waiting: ProjectCommit[] = [];
  private waitingKeys = 0;
  /** Statements that could not be sent, to send once the connection is back. */
  private unsent: string[][] = [];
  private unsentKeys = 0;
  private sending: Promise<void> | null = null;
  private overflowWarned = false;

  constructor(
    private readonly connection: NotificationConnection,
    private readonly log: Pick<Logger, 'warn'>,
  ) {}

  announce(committed: readonly ProjectCommit[]): void {
    const keys = committed.reduce((n, c) => n + c.keys.length / keyLength, 0);
    if (this.waitingKeys + keys > maxWaitingKeys) {
      if (!this.overflowWarned) this.log.warn('live: commits announced slower than made; skipped');
      this.overflowWarned = true;
      return;
    }
    this.waiting.push(...committed);
    this.waitingKeys += keys;
    this.sending ??= this.sendWaiting();
  }

  /** The connection is back: sends again what could not be sent while it was down. */
  announceUnsent(): void {
    const statements = this.unsent;
    this.unsent = [];
    this.unsentKeys = 0;
    if (statements.length === 0) return;
    void (async () => {
      await this.sending;
      for (const statement of statements) await this.send(statement);
    })();
  }

  /** Resolves once everything announced so far is sent (or kept to be sent again). */
  async flush(): Promise<void> {
    await this.sending;
  }

  private async sendWaiting(): Promise<void> {
    while (this.waitingKeys > 0) {
      await sleep(gatherMs);
      // One statement, one transaction: its notifications arrive together (at most
      // maxWaitingKeys of them, ~15 MB, held by Postgres until it commits).
      const payloads = commitPayloads(this.waiting);
      this.waiting = [];
      this.waitingKeys = 0;
      await this.send(payloads);
    }
    this.overflowWarned = false;
    this.sending = null;
  }

  private async send(statement: string[]): Promise<void> {
    if (await this.connection.send((client) => notifyCommits(client, statement))) return;
    const keys = statement.reduce((n, p) => n + Math.floor(p.length / keyLength), 0);
    if (this.unsentKeys + keys > maxWaitingKeys) return;
    this.unsent.push(statement);
    this.unsentKeys += keys;
  }
}
