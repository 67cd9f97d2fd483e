// The Piscina pool of writer threads. Every option is here, with the reason for its value.
import { Piscina } from 'piscina';
import type { Logger } from 'pino';
import type {
  InsertBatchResult,
  InsertBatchTask,
  WriterThreadOptions,
} from '../workers/insert-batch-messages.js';

export interface WriterPool {
  run(task: InsertBatchTask): Promise<InsertBatchResult>;
  /** Batches written at once: threads × batches per thread. */
  readonly concurrency: number;
  /** Batches waiting in Piscina's queue beyond the running ones. */
  readonly queueCapacity: number;
  /** Share of time the threads were busy, 0..1. */
  utilization(): number;
  close(): Promise<void>;
}

// Under vitest/tsx the worker is the .ts source and needs tsx's loader; the build runs the .js.
const runningFromSource = import.meta.url.endsWith('.ts');
const workerFile = new URL(
  `../workers/insert-batch-worker.${runningFromSource ? 'ts' : 'js'}`,
  import.meta.url,
);

export function createWriterPool(
  threads: number,
  threadOptions: WriterThreadOptions,
  log: Logger,
): WriterPool {
  // A thread writes as many batches at once as its pg pool has connections: while one batch waits
  // for its COMMIT, the next is already on the wire (single events: one batch per thread at a
  // time left the machine 20% idle, waiting on round trips).
  const batchesPerThread = threadOptions.pool.max;
  const piscina = new Piscina<InsertBatchTask, InsertBatchResult>({
    filename: workerFile.href,
    workerData: threadOptions,
    execArgv: runningFromSource ? ['--import', 'tsx'] : [],
    // A fixed set of threads, each holding its pg connections for the life of the process.
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: Infinity,
    concurrentTasksPerWorker: batchesPerThread,
    // 'sync' (the default) freezes the thread's event loop between tasks, so its pg pool never
    // sees a dropped idle connection and hands the dead client to the next batch.
    atomics: 'disabled',
    // The batcher queues at most this many beyond the running ones; anything more is a bug, refused.
    maxQueue: threads * batchesPerThread,
  });
  // A thread that dies with no task attached reports here; its replacement is started by Piscina.
  piscina.on('error', (err: Error) => log.error({ err: err.message }, 'writer thread crashed'));
  return {
    run: (task) => piscina.run(task),
    concurrency: threads * batchesPerThread,
    queueCapacity: threads * batchesPerThread,
    utilization: () => piscina.utilization,
    close: () => piscina.close({ force: false }),
  };
}
