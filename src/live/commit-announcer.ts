// Sends each committed batch's keys on the commit channel, off the write path: the writer has
// committed and answered already. Batches that commit while a NOTIFY is under way wait and go
// together in the next one, so the statements sent grow with time, not with batches.
import type { Logger } from 'pino';
import { commitPayloads, notifyCommits, type ProjectKeys } from '../sql/commit-notifications.js';
import type { NotificationConnection } from '../sql/notification-connection.js';

/** Payloads waiting (each under 8000 bytes): past it, commits are not announced and /live
 *  subscribers miss them, rather than this process holding an unbounded backlog. */
const maxWaitingPayloads = 2000;
/** Payloads per statement: each is one NOTIFY, held in memory by Postgres until commit. */
const payloadsPerStatement = 500;

export class CommitAnnouncer {
  private waiting: string[] = [];
  private sending: Promise<void> | null = null;
  private overflowWarned = false;

  constructor(
    private readonly connection: NotificationConnection,
    private readonly log: Pick<Logger, 'warn'>,
  ) {}

  announce(committed: readonly ProjectKeys[]): void {
    const payloads = commitPayloads(committed);
    if (this.waiting.length + payloads.length > maxWaitingPayloads) {
      if (!this.overflowWarned) this.log.warn('live: commits announced slower than made; skipped');
      this.overflowWarned = true;
      return;
    }
    for (const payload of payloads) this.waiting.push(payload);
    this.sending ??= this.sendWaiting();
  }

  /** Resolves once everything announced so far is sent (or lost with the connection). */
  async flush(): Promise<void> {
    await this.sending;
  }

  private async sendWaiting(): Promise<void> {
    while (this.waiting.length > 0) {
      const payloads = this.waiting.splice(0, payloadsPerStatement);
      await this.connection.send((client) => notifyCommits(client, payloads));
    }
    this.overflowWarned = false;
    this.sending = null;
  }
}
