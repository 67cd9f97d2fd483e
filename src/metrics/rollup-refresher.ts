// Runs a rollup refresh every ROLLUP_REFRESH_MS. Every process runs one; the advisory lock in
// refreshRollup makes all but one skip each round.
import type pg from 'pg';
import type { Logger } from 'pino';
import { refreshRollup } from '../sql/refresh-rollup.js';
import type { Telemetry } from '../telemetry/telemetry.js';

export class RollupRefresher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private refreshedAtMs: number | undefined;
  private summarizeError: string | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly intervalMs: number,
    /** Per refresh, beyond the pool's request timeouts: a catch-up over many rows takes long. */
    private readonly timeoutMs: number,
    private readonly log: Logger,
    private readonly telemetry: Telemetry,
  ) {}

  /** Seconds since the rollup last absorbed rows, by any process; undefined before the first round. */
  get lagSeconds(): number | undefined {
    return this.refreshedAtMs === undefined ? undefined : (Date.now() - this.refreshedAtMs) / 1000;
  }

  start(): void {
    this.schedule();
  }

  /** One refresh now (tests and the benchmark call this). */
  async refreshNow(): Promise<void> {
    const started = Date.now();
    try {
      const result = await refreshRollup(this.pool, this.timeoutMs);
      this.refreshedAtMs = result.refreshedAtMs;
      if (result.ran) this.telemetry.rollupRefreshSeconds.observe((Date.now() - started) / 1000);
      // Warned once per distinct reason: a lock timeout behind a VACUUM is routine, but a lasting
      // failure (the index owned by another role) slowly makes every uncached /metrics slower.
      if (result.ran && result.summarizeError !== this.summarizeError) {
        this.summarizeError = result.summarizeError;
        if (result.summarizeError !== undefined) {
          this.log.warn({ err: result.summarizeError }, 'rollup tail index not summarized');
        }
      }
      if (result.ran && result.rows > 0) {
        this.log.info(
          {
            rows: result.rows,
            cells: result.cells,
            hourCells: result.hourCells,
            ms: Date.now() - started,
          },
          'rollup refreshed',
        );
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'rollup refresh failed; will retry');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.refreshNow().finally(() => {
        this.running = undefined;
        this.schedule();
      });
    }, this.intervalMs);
    this.timer.unref();
  }
}
