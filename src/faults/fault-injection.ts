// Test-only fault injection: deliberate bugs the reliability suites switch on (FAULT_INJECTION,
// let through only with the suites' own switch, see config.ts) to prove their scenarios can fail.
// Every hook's behaviour lives here; production code calls one function at each hook site, and
// with no fault switched on each call is a boolean read.
import type { Fault } from '../config.js';

let ackBeforeCommit = false;
let unsortedBatches = false;
let workerCrash = false;

/** Once per thread at start-up: the main thread from its config, each writer thread from its
 *  workerData. Module state rather than a parameter, so no production signature carries it. */
export function switchOnFaults(faults: Iterable<Fault>): void {
  const on = new Set(faults);
  ackBeforeCommit = on.has('ack-before-commit');
  unsortedBatches = on.has('unsorted-batches');
  workerCrash = on.has('worker-crash');
}

/** 'ack-before-commit', the negative control of the kill -9 scenario: a durable request is
 *  answered "stored" as soon as it is queued, so a kill loses acknowledged events and that
 *  scenario must report them lost. */
export function acksBeforeCommit(): boolean {
  return ackBeforeCommit;
}

/** 'unsorted-batches', the negative control of the twin-streams scenario: keys are written in
 *  arrival order, to prove that scenario can see the deadlocks sorting prevents. */
export function keysInArrivalOrder(): boolean {
  return unsortedBatches;
}

/** Under 'unsorted-batches' deadlocks surface instead of being retried away. */
export function deadlockRetries(retries: number): number {
  return unsortedBatches ? 0 : retries;
}

/** 'worker-crash': an event named `${workerCrashEventPrefix}<mode>` kills its writer thread in one
 *  of the four ways a thread really dies, while its batch is in flight, so the chaos suite can
 *  check that every request on it gets a 503 and that Piscina puts a fresh thread (and fresh
 *  connections) in its place. */
export const workerCrashEventPrefix = '__fault_worker_crash:';
export const workerCrashModes = ['timer-throw', 'unhandled-rejection', 'exit', 'heap'] as const;
export type WorkerCrashMode = (typeof workerCrashModes)[number];

/** Under 'worker-crash' a small cap, so the heap-exhaustion crash ends the thread in well under a
 *  second. */
export function writerHeapLimitMb(limitMb: number): number {
  return workerCrash ? 64 : limitMb;
}

/** In a writer thread: never resolves when the batch asks for a crash (the thread dies first, so
 *  the batch is never written by this attempt); undefined otherwise. */
export function injectedWriterCrash(
  events: readonly { readonly event_name: string }[],
): Promise<never> | undefined {
  if (!workerCrash) return undefined;
  const mode = requestedWorkerCrash(events);
  return mode === undefined ? undefined : crashWriterThread(mode);
}

function requestedWorkerCrash(
  events: readonly { readonly event_name: string }[],
): WorkerCrashMode | undefined {
  for (const event of events) {
    if (!event.event_name.startsWith(workerCrashEventPrefix)) continue;
    const mode = event.event_name.slice(workerCrashEventPrefix.length);
    if ((workerCrashModes as readonly string[]).includes(mode)) return mode as WorkerCrashMode;
  }
  return undefined;
}

function crashWriterThread(mode: WorkerCrashMode): Promise<never> {
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
