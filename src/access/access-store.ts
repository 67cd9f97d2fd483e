// Keeps this process's access snapshot current: reload on each change notification (the service's
// notification connection calls reload), and a poll of access_version every ACCESS_REFRESH_MS in case a notification is lost (a dropped
// connection, a pooler that does not pass NOTIFY). Key use is flushed to last_used_at on the poll.
import type pg from 'pg';
import type { Logger } from 'pino';
import { readAccessRows, readAccessVersion, writeLastUsed } from '../sql/access-rows.js';
import { buildAccessSnapshot, type AccessSnapshot } from './access-snapshot.js';

export class AccessStore {
  private timer: NodeJS.Timeout | null = null;
  private reloading: Promise<void> | null = null;
  private reloadAgain = false;
  private flushedUpToMs = 0;
  private stopped = false;
  private pollFailing = false;

  private constructor(
    private current: AccessSnapshot,
    private readonly pool: pg.Pool,
    private readonly log: Pick<Logger, 'warn'>,
  ) {}

  /** Reads the rules once; the store is usable from here on. */
  static async load(pool: pg.Pool, log: Pick<Logger, 'warn'>): Promise<AccessStore> {
    return new AccessStore(buildAccessSnapshot(await readAccessRows(pool), null), pool, log);
  }

  get snapshot(): AccessSnapshot {
    return this.current;
  }

  /** Starts polling. */
  start(refreshMs: number): void {
    const tick = () => {
      void this.poll().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, refreshMs);
      });
    };
    this.timer = setTimeout(tick, refreshMs);
  }

  /** Reloads now, and once more after the running reload when one is under way. */
  reload(): Promise<void> {
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.reloadAgain = false;
        try {
          this.current = buildAccessSnapshot(await readAccessRows(this.pool), this.current);
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'access rules could not be reloaded');
        }
      } while (this.reloadAgain && !this.stopped);
      this.reloading = null;
    })();
    return this.reloading;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.reloading;
    await this.flushLastUsed().catch(() => undefined);
  }

  private async poll(): Promise<void> {
    try {
      if ((await readAccessVersion(this.pool)) !== this.current.version) await this.reload();
      await this.flushLastUsed();
      this.pollFailing = false;
    } catch (err) {
      // Once per outage, not once a poll: the readiness probe reports the database already.
      if (!this.pollFailing)
        this.log.warn({ err: (err as Error).message }, 'access version could not be read');
      this.pollFailing = true;
    }
  }

  private async flushLastUsed(): Promise<void> {
    const since = this.flushedUpToMs;
    const ids: number[] = [];
    const usedMs: number[] = [];
    let upTo = since;
    for (const key of this.current.keys.values()) {
      if (key.usedAtMs <= since) continue;
      ids.push(key.id);
      usedMs.push(key.usedAtMs);
      upTo = Math.max(upTo, key.usedAtMs);
    }
    if (ids.length === 0) return;
    await writeLastUsed(this.pool, ids, usedMs);
    this.flushedUpToMs = upTo;
  }
}
