// startLoad (test/helpers/load.ts) with the SDK-retry client: each request is re-sent with the same
// event ids until it is acknowledged (test/chaos/lib/retrying-client.ts), so every event generated
// should end up acknowledged and stored exactly once.
import { randomUUID } from 'node:crypto';
import type { LoadOptions, LoadRun } from '../../helpers/load.js';
import { sleep } from '../../helpers/wait-until.js';
import { sendUntilAcked } from './retrying-client.js';

export interface RetryingLoadOptions extends LoadOptions {
  readonly maxAttempts: number;
  readonly maxBackoffMs: number;
}

export function startRetryingLoad(options: RetryingLoadOptions): LoadRun {
  const endAt = Date.now() + options.maxDurationMs;
  let sent = 0;
  let stopped = false;
  const client = async (clientIndex: number) => {
    while (!stopped && sent < options.maxRequests && Date.now() < endAt) {
      sent++;
      const events = Array.from({ length: options.eventsPerRequest }, (_, i) => ({
        event_id: randomUUID(),
        event_name: 'load',
        user_id: `client-${clientIndex}`,
        timestamp: 1_700_000_000 + i,
      }));
      // Retries go on after stop(): bounded by maxAttempts, and a started request must end acked.
      await sendUntilAcked(options.url, events, options);
      if (options.pauseMs) await sleep(options.pauseMs);
    }
  };
  const done = Promise.all(Array.from({ length: options.clients }, (_, i) => client(i))).then(
    () => undefined,
  );
  return {
    stop: () => {
      stopped = true;
    },
    done,
    get sent() {
      return sent;
    },
  };
}
