// A pool whose callers wait their turn in a queue of its own. pg-pool bounds two different waits
// with one number, connectionTimeoutMillis: opening a connection (the database is slow or gone)
// and waiting for one of its busy connections (the database is fine, only busy). A burst of slow
// reads, ten dashboard panels on a cold server say, then fails the callers beyond the pool's size
// after PG_CONNECT_TIMEOUT_MS as if the database were unreachable. Here a caller first waits for a
// turn, up to waitMs and behind at most maxWaiting others, and only then checks a connection out,
// which is then at once or a new connection under the connect timeout. Running out of patience or
// of room is a PoolBusyError, so it is answered "busy", not "unavailable"; so is still waiting when
// the pool ends at shutdown (a client that went away leaves its read in the queue).
import type pg from 'pg';
import { IntrusiveList, type ListLinks } from '../intrusive-list.js';
import { withClient } from './create-pool.js';

export interface PoolQueueLimits {
  /** How long a caller waits for a turn once every connection is busy. */
  readonly waitMs: number;
  /** Callers that may wait at once; one more is refused at once. 0: none wait. */
  readonly maxWaiting: number;
}

export class PoolBusyError extends Error {
  constructor(
    readonly reason: 'queue_full' | 'wait_timeout' | 'closed',
    readonly connections: number,
    readonly limits: PoolQueueLimits,
  ) {
    super(`no turn at the pool: ${reason}`);
  }
}

interface Waiter extends ListLinks<Waiter> {
  readonly start: () => void;
  readonly refuse: (err: PoolBusyError) => void;
  readonly timer: NodeJS.Timeout;
}

export class QueuedPool {
  /** The turns there are: the pool's max, which pg-pool always fills in. */
  readonly connections: number;
  private free: number;
  private readonly waiting = new IntrusiveList<Waiter>();
  private ended = false;

  constructor(
    readonly pool: pg.Pool,
    readonly limits: PoolQueueLimits,
  ) {
    this.connections = pool.options.max!;
    this.free = this.connections;
  }

  get waitingCount(): number {
    return this.waiting.size;
  }

  /** Runs fn on one checked-out client (see withClient) once a turn is free. */
  async withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    await this.takeTurn();
    try {
      return await withClient(this.pool, fn);
    } finally {
      this.passTurn();
    }
  }

  /** Refuses every caller still waiting, and any later one, then ends the pool (which waits for
   *  the connections in use). */
  async end(): Promise<void> {
    this.ended = true;
    this.waiting.forEach((waiter) => {
      this.waiting.delete(waiter);
      clearTimeout(waiter.timer);
      waiter.refuse(this.busy('closed'));
    });
    await this.pool.end();
  }

  query<R extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    return this.withClient((client) => client.query<R>(config));
  }

  private takeTurn(): Promise<void> | void {
    if (this.ended) throw this.busy('closed');
    if (this.free > 0) {
      this.free--;
      return;
    }
    if (this.waiting.size >= this.limits.maxWaiting) throw this.busy('queue_full');
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        start: resolve,
        refuse: reject,
        timer: setTimeout(() => {
          this.waiting.delete(waiter);
          reject(this.busy('wait_timeout'));
        }, this.limits.waitMs).unref(),
        listOlder: undefined,
        listNewer: undefined,
      };
      this.waiting.add(waiter);
    });
  }

  private busy(reason: PoolBusyError['reason']): PoolBusyError {
    return new PoolBusyError(reason, this.connections, this.limits);
  }

  /** The turn goes straight to the longest waiter, so a caller arriving now cannot overtake. */
  private passTurn(): void {
    const next = this.waiting.oldest;
    if (!next) {
      this.free++;
      return;
    }
    this.waiting.delete(next);
    clearTimeout(next.timer);
    next.start();
  }
}
