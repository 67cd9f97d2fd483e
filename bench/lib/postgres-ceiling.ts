// The Postgres-only ceiling: what this machine's Postgres stores per second when nothing but the
// writers' own statement runs, from 2 connections (as many as the default INGEST_WORKERS) with
// pre-built rows, so no HTTP, validation or thread hand-off is in the number.
import { createPool } from '../../src/sql/create-pool.js';
import { insertEventRows, toEventRows, type EventRows } from '../../src/sql/insert-events.js';
import type { Logger } from 'pino';
import { cpuGrowth, readMachineCpu, readProcessTreeCpu } from './proc-stats.js';

export interface CeilingOptions {
  readonly dsn: string;
  readonly seconds: number;
  readonly connections: number;
  readonly batchRows: number;
  /** Rows are pre-built up front; sized for this many rows/s, the run ends early past it. */
  readonly maxRowsPerSecond: number;
  readonly idPrefix: string;
  readonly timestamp: number;
  /** For the CPU accounting: Postgres's CPU is its postmaster's children's. */
  readonly postmasterPid: number;
  readonly log: Logger;
}

export interface CeilingResult {
  readonly rowsPerSecond: number;
  readonly rows: number;
  readonly seconds: number;
  /** True when the pre-built rows ran out before the time did (raise maxRowsPerSecond). */
  readonly exhausted: boolean;
  /** Cores busy while it ran: Postgres, this process (pg's array serialization), the machine. */
  readonly cpuCores: {
    readonly postgres: number;
    readonly client: number;
    readonly machineBusy: number;
  };
}

export async function measurePostgresCeiling(options: CeilingOptions): Promise<CeilingResult> {
  const warmBatches = options.connections;
  const batchCount =
    warmBatches + Math.ceil((options.seconds * options.maxRowsPerSecond) / options.batchRows);
  const batches: EventRows[] = [];
  let n = 0;
  for (let b = 0; b < batchCount; b++) batches.push(buildRows(options, () => n++));

  const pool = createPool(
    {
      connectionString: options.dsn,
      applicationName: 'pulse-bench-ceiling',
      max: options.connections,
      connectTimeoutMs: 5000,
      statementTimeoutMs: 30_000,
      queryTimeoutMs: 60_000,
    },
    options.log,
  );
  try {
    // One untimed batch per connection: connect and prepare the statement, as writers do once.
    await Promise.all(batches.slice(0, warmBatches).map((rows) => insertEventRows(pool, rows)));
    let next = warmBatches;
    let rows = 0;
    const postgresBefore = readProcessTreeCpu(options.postmasterPid);
    const clientBefore = process.cpuUsage();
    const machineBefore = readMachineCpu();
    const startedAt = performance.now();
    const endAt = startedAt + options.seconds * 1000;
    const loop = async () => {
      while (performance.now() < endAt && next < batches.length) {
        const { inserted } = await insertEventRows(pool, batches[next++]!);
        // Not `rows += (await …)`: that reads rows before the await and loses the other loop's adds.
        rows += inserted;
      }
    };
    await Promise.all(Array.from({ length: options.connections }, loop));
    const seconds = (performance.now() - startedAt) / 1000;
    const client = process.cpuUsage(clientBefore);
    return {
      rowsPerSecond: rows / seconds,
      rows,
      seconds,
      exhausted: next >= batches.length,
      cpuCores: {
        postgres: cpuGrowth(postgresBefore, readProcessTreeCpu(options.postmasterPid)) / seconds,
        client: (client.user + client.system) / 1e6 / seconds,
        machineBusy: (readMachineCpu().busySeconds - machineBefore.busySeconds) / seconds,
      },
    };
  } finally {
    // pool.end() resolves before the sockets close; the caller drops the database right after,
    // and a connection still open then is terminated (57P01) and logged as lost.
    let open = pool.totalCount;
    const closed = new Promise<void>((resolve) => {
      if (open === 0) resolve();
      pool.on('remove', () => {
        if (--open <= 0) resolve();
      });
    });
    await pool.end();
    await closed;
  }
}

/** The rows the writers build for the events the load sends. */
function buildRows(options: CeilingOptions, nextIndex: () => number): EventRows {
  return toEventRows(
    Array.from({ length: options.batchRows }, () => {
      const i = nextIndex();
      return {
        event_id: `${options.idPrefix}-${i}`,
        event_name: 'bench',
        user_id: `u${i % 10_000}`,
        timestamp: options.timestamp,
        channel: 'web',
      };
    }),
  );
}
