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
  readonly threads: number;
  /** Batches waiting in Piscina's queue beyond the running ones. */
  readonly queueCapacity: number;
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
  const piscina = new Piscina<InsertBatchTask, InsertBatchResult>({
    filename: workerFile.href,
    workerData: threadOptions,
    execArgv: runningFromSource ? ['--import', 'tsx'] : [],
    // A fixed set of threads, each holding its pg connections for the life of the process.
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: Infinity,
    // One batch per thread at a time: a batch is one statement on one connection.
    concurrentTasksPerWorker: 1,
    // 'sync' (the default) freezes the thread's event loop between tasks, so its pg pool never
    // sees a dropped idle connection and hands the dead client to the next batch.
    atomics: 'disabled',
    // The batcher keeps at most one batch queued per thread; anything beyond is a bug, refused.
    maxQueue: threads,
  });
  // A thread that dies with no task attached reports here; its replacement is started by Piscina.
  piscina.on('error', (err: Error) => log.error({ err: err.message }, 'writer thread crashed'));
  return {
    run: (task) => piscina.run(task),
    threads,
    queueCapacity: threads,
    close: () => piscina.close({ force: false }),
  };
}
