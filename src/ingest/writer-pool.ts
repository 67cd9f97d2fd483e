// The Piscina pool of writer threads. Every option is here, with the reason for its value.
import { Piscina } from 'piscina';
import type { Logger } from 'pino';
import { writerHeapLimitMb } from '../faults/fault-injection.js';
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

/** Old-generation heap per writer thread for each byte of BATCH_MAX_BYTES it may hold: a batch
 *  lives there as its text (up to 2 bytes a character), its parsed events and the statement's
 *  parameters, and small events take several times their text as objects. */
const heapBytesPerBatchByte = 32;
const heapFloorMb = 512;

export function createWriterPool(
  threads: number,
  threadOptions: WriterThreadOptions,
  log: Logger,
  batchMaxBytes: number,
): WriterPool & WriterPoolStats {
  // A thread writes as many batches at once as its pg pool has connections: while one batch waits
  // for its COMMIT, the next is already on the wire, instead of the thread idling on round trips.
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
    resourceLimits: {
      // V8's default young generation is mostly empty reserve here (~30 MB a thread); 8 MB made
      // no measurable difference to the small-event benchmarks.
      maxYoungGenerationSizeMb: 8,
      // A cap far above what a thread holds, yet far below V8's default: V8 lets a heap grow
      // further past its live size before a major GC the larger its cap, and a writer's dead
      // batch copies were most of its heap.
      maxOldGenerationSizeMb: writerHeapLimitMb(
        Math.max(
          heapFloorMb,
          Math.ceil((heapBytesPerBatchByte * batchMaxBytes * batchesPerThread) / 2 ** 20),
        ),
      ),
    },
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
