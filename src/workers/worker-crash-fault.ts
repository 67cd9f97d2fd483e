// The 'worker-crash' fault (FAULT_INJECTION, test-only): an event named
// `__fault_worker_crash:<mode>` kills the writer thread in one of the four ways a thread really
// dies, while its batch is in flight, so the chaos suite can check that every request on it gets a
// 503 and that Piscina puts a fresh thread (and fresh connections) in its place.
import {
  workerCrashEventPrefix,
  workerCrashModes,
  type WorkerCrashMode,
} from './insert-batch-messages.js';

/** The crash mode the batch asks for, if any event in it carries the trigger. */
export function requestedWorkerCrash(
  events: readonly { readonly event_name: string }[],
): WorkerCrashMode | undefined {
  for (const event of events) {
    if (!event.event_name.startsWith(workerCrashEventPrefix)) continue;
    const mode = event.event_name.slice(workerCrashEventPrefix.length);
    if ((workerCrashModes as readonly string[]).includes(mode)) return mode as WorkerCrashMode;
  }
  return undefined;
}

/** Never resolves: the thread dies first, so the batch is never written by this attempt. */
export function crashWorker(mode: WorkerCrashMode): Promise<never> {
  switch (mode) {
    case 'timer-throw':
      setTimeout(() => {
        throw new Error('injected fault: uncaught exception in a writer thread timer');
      }, 1);
      break;
    case 'unhandled-rejection':
      void Promise.reject(new Error('injected fault: unhandled rejection in a writer thread'));
      break;
    case 'exit':
      process.exit(1); // in a worker thread this ends the thread, not the process
      break;
    case 'heap': {
      // Grows until the thread's resourceLimits (writer-pool.ts) terminate it with
      // ERR_WORKER_OUT_OF_MEMORY; the process's own heap is not involved.
      const hoard: number[][] = [];
      for (;;) hoard.push(new Array<number>(1 << 16).fill(hoard.length));
    }
  }
  return new Promise<never>(() => undefined);
}
