// Periodically asks the database for a trivial answer. Readiness reports its state, and the
// batcher uses it to refuse durable requests fast while the database is down and to resume by
// itself when it is back.
import type pg from 'pg';
import type { Logger } from 'pino';
import { migrationsApplied } from './migrate.js';

export interface DatabaseState {
  readonly reachable: boolean;
  readonly migrated: boolean;
  readonly detail: string;
}

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
      const migrated = await migrationsApplied(this.pool, this.expectedMigrations);
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

  start(intervalMs: number): void {
    const tick = () => {
      if (this.stopped) return;
      this.timer = setTimeout(() => void this.probe().finally(tick), intervalMs);
      this.timer.unref();
    };
    tick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
