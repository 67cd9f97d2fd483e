// Settings that are each in range but wrong together: refused at start-up like a bad value.
import { MiB } from './config-variables.js';

/** The settings the checks compare (a loaded Config has them all). */
export type CrossCheckedSettings = Readonly<
  Record<
    | 'batchMaxSize'
    | 'batchMaxBytes'
    | 'bulkMaxEvents'
    | 'exportMinBytesPerSec'
    | 'exportThroughputWindowMs'
    | 'maxBodyBytes'
    | 'pgQueryTimeoutMs'
    | 'pgStatementTimeoutMs'
    | 'queueMaxBytes'
    | 'queueMaxSize',
    number
  >
>;

export function crossCheckProblems(config: CrossCheckedSettings): string[] {
  const problems: string[] = [];
  const atLeast = (name: string, value: number, otherName: string, other: number) => {
    if (value < other) problems.push(`${name}=${value}: must be at least ${otherName} (${other})`);
  };
  // One request's events commit in one transaction, so a batch must be able to hold a whole bulk.
  atLeast('BATCH_MAX_SIZE', config.batchMaxSize, 'BULK_MAX_EVENTS', config.bulkMaxEvents);
  atLeast('QUEUE_MAX_SIZE', config.queueMaxSize, 'BULK_MAX_EVENTS', config.bulkMaxEvents);
  // Nor may a batch or the queue be too small for the largest body a request may send.
  atLeast('BATCH_MAX_BYTES', config.batchMaxBytes, 'MAX_BODY_BYTES', config.maxBodyBytes);
  atLeast('QUEUE_MAX_BYTES', config.queueMaxBytes, 'BATCH_MAX_BYTES', config.batchMaxBytes);
  // The server-side timeout must fire first: a client whose query_timeout fired is wedged.
  if (config.pgStatementTimeoutMs >= config.pgQueryTimeoutMs)
    problems.push(
      `PG_STATEMENT_TIMEOUT_MS=${config.pgStatementTimeoutMs}: must be below PG_QUERY_TIMEOUT_MS (${config.pgQueryTimeoutMs})`,
    );
  // A socket reports room only once a third of its send buffer (up to 4 MiB on Linux) drained:
  // a reader above the floor can fall that far behind between two reports.
  const allowanceBytes = (config.exportMinBytesPerSec * config.exportThroughputWindowMs) / 1000;
  if (config.exportMinBytesPerSec > 0 && allowanceBytes < 2 * MiB)
    problems.push(
      `EXPORT_THROUGHPUT_WINDOW_MS=${config.exportThroughputWindowMs}: × EXPORT_MIN_BYTES_PER_SEC (${config.exportMinBytesPerSec}) must allow at least 2 MiB`,
    );
  return problems;
}
