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

/** What the composition root reads beyond the batcher's needs (telemetry). */
export interface WriterPoolStats {
  /** Live writer threads; Piscina starts a replacement when one dies. */
  threadCount(): number;
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
): WriterPool & WriterPoolStats {
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
    // Only under the test-only 'worker-crash' fault: a small heap cap, so the heap-exhaustion crash
    // ends the thread in well under a second instead of growing towards the default ~2 GB.
    ...(threadOptions.faults?.includes('worker-crash')
      ? { resourceLimits: { maxOldGenerationSizeMb: 64 } }
      : {}),
  });
  // A thread that dies with no task attached reports here; its replacement is started by Piscina.
  piscina.on('error', (err: Error) => log.error({ err: err.message }, 'writer thread crashed'));
  return {
    run: (task) => piscina.run(task),
    concurrency: threads * batchesPerThread,
    queueCapacity: threads * batchesPerThread,
    utilization: () => piscina.utilization,
    threadCount: () => piscina.threads.length,
    close: () => piscina.close({ force: false }),
  };
}
