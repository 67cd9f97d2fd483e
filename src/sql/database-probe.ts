// Periodically asks the database for a trivial answer. Readiness reports its state, and the
// batcher uses it to refuse durable requests fast while the database is down and to resume by
// itself when it is back.
import type pg from 'pg';
import type { Logger } from 'pino';
import { isConnectionLost } from './classify-pg-error.js';
import { migrationsApplied } from './migrate.js';

export interface DatabaseState {
  readonly reachable: boolean;
  readonly migrated: boolean;
  readonly detail: string;
}

/** A refused connection costs the database nothing, so probing 4×/s while it is down is free. */
const unreachableIntervalMs = 250;

export class DatabaseProbe {
  private current: DatabaseState = { reachable: false, migrated: false, detail: 'not probed yet' };
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly expectedMigrations: readonly string[],
    private readonly log: Logger,
    private readonly onChange: (state: DatabaseState) => void,
  ) {}

  get state(): DatabaseState {
    return this.current;
  }

  async probe(): Promise<DatabaseState> {
    let next: DatabaseState;
    try {
      const migrated = await this.checkMigrations();
      next = { reachable: true, migrated, detail: migrated ? 'ok' : 'migrations not applied' };
    } catch (err) {
      next = { reachable: false, migrated: false, detail: (err as Error).message };
    }
    if (next.reachable !== this.current.reachable) {
      this.log[next.reachable ? 'info' : 'warn'](
        { detail: next.detail },
        next.reachable ? 'database reachable' : 'database unreachable',
      );
    }
    this.current = next;
    this.onChange(next);
    return next;
  }

  /** One dead pooled connection (pg_terminate_backend of an idle one) is no outage: readiness
   *  false would make the batcher refuse every durable request until the next probe. */
  private async checkMigrations(): Promise<boolean> {
    try {
      return await migrationsApplied(this.pool, this.expectedMigrations);
    } catch (err) {
      if (!isConnectionLost(err)) throw err;
      return migrationsApplied(this.pool, this.expectedMigrations);
    }
  }

  start(intervalMs: number): void {
    const tick = () => {
      if (this.stopped) return;
      // While the database is gone, look more often: the batcher refuses durable requests until
      // a probe (or a batch) succeeds, so the interval is added to every outage's recovery time
      // (chaos: postmaster kill -9, first 202 ~1 s after Postgres was back at a 1 s interval).
      const nextMs = this.current.reachable
        ? intervalMs
        : Math.min(intervalMs, unreachableIntervalMs);
      this.timer = setTimeout(() => void this.probe().finally(tick), nextMs);
      this.timer.unref();
    };
    tick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
