import { progress } from './progress.js';

interface Stoppable {
  stop(): Promise<void>;
}

/** Ctrl-C: stop what the bench started, in the order given (the server child, then Postgres),
 *  nothing else, and exit 130. `started` is read when the signal comes. */
export function stopOnInterrupt(started: () => readonly (Stoppable | undefined)[]): void {
  process.once('SIGINT', () => {
    progress('interrupted: stopping the server and Postgres');
    void (async () => {
      for (const thing of started()) await thing?.stop().catch(() => undefined);
      process.exit(130);
    })();
  });
}
