// The ingest bench's scenarios, the Go MVP's stored rates it compares against, the targets, and
// the shape of each scenario's requests.
import { configVariables } from '../../src/config.js';
import { uniqueEvents, type UniqueEvents } from '../lib/unique-events.js';
import type { IngestOptions } from './options.js';
import type { ScenarioMedians } from './results.js';

export type Payload = 'single' | 'bulk';

export interface Scenario {
  readonly id: string;
  readonly payload: Payload;
  /** undefined in --url mode: the running server's own setting applies. */
  readonly ack: 'durable' | 'queued' | undefined;
  readonly connectionsFactor: number;
  /** Events padded with metadata to about this many bytes (unset: ~150-byte events). */
  readonly eventBytes?: number;
}

export const localScenarios: readonly Scenario[] = [
  { id: 'single-durable', payload: 'single', ack: 'durable', connectionsFactor: 1 },
  { id: 'single-queued', payload: 'single', ack: 'queued', connectionsFactor: 1 },
  { id: 'bulk100-durable', payload: 'bulk', ack: 'durable', connectionsFactor: 1 },
  // Queued, not durable: a durable client waits for its commit, so the clients themselves bound
  // what is in flight; in queued mode only QUEUE_MAX_SIZE does, which is what this must show.
  // Bulk at 10× connections holds 50k events in flight, 5× the default QUEUE_MAX_SIZE (10,000).
  { id: 'overload', payload: 'bulk', ack: 'queued', connectionsFactor: 10 },
  // The same overload with events of 512 KiB: QUEUE_MAX_BYTES, not QUEUE_MAX_SIZE, must bound it
  // (10,000 such events would be 5 GiB).
  {
    id: 'overload-large',
    payload: 'single',
    ack: 'queued',
    connectionsFactor: 10,
    eventBytes: 512 * 1024,
  },
];
export const urlScenarios: readonly Scenario[] = [
  { id: 'single', payload: 'single', ack: undefined, connectionsFactor: 1 },
  { id: 'bulk', payload: 'bulk', ack: undefined, connectionsFactor: 1 },
  { id: 'overload', payload: 'bulk', ack: undefined, connectionsFactor: 10 },
];
export const defaultUrlScenarios = ['single', 'bulk'];

/** The Go MVP's stored events/s on this machine kind, autocannon c=50, unique bodies (the key
 *  keeps the name the JSON results have always used). */
export const seedStoredEventsPerSecond: Record<Payload, number> = { single: 17_000, bulk: 8_100 };

export interface Target {
  readonly text: string;
  readonly met: (m: ScenarioMedians, options: IngestOptions) => boolean;
}

export const targets: Readonly<Record<string, Target>> = {
  'single-durable': {
    text: '≥ 22k/s, p99 ≤ 20 ms',
    met: (m) => m.storedEventsPerSecond >= 22_000 && m.latencyP99Ms <= 20,
  },
  'single-queued': { text: '≥ 25k/s', met: (m) => m.storedEventsPerSecond >= 25_000 },
  'bulk100-durable': {
    text: '≥ 40k/s, ≥ 50% of ceiling',
    met: (m) => m.storedEventsPerSecond >= 40_000 && m.ceilingRatio >= 0.5,
  },
  overload: {
    text: '503s, RSS < 300 MB',
    met: (m) => (m.statusCounts['503'] ?? 0) > 0 && m.peakRssMib < 300,
  },
  'overload-large': {
    text: '503s, RSS < 300 MB + QUEUE_MAX_BYTES',
    met: (m, options) =>
      (m.statusCounts['503'] ?? 0) > 0 &&
      m.peakRssMib <
        300 +
          Number(options.serverEnv.QUEUE_MAX_BYTES ?? configVariables.queueMaxBytes.fallback) /
            (1024 * 1024),
  },
};

/** Every writer statement and the ceiling's carry this many rows at most; the ceiling uses it. */
export const ceilingBatchRows = 500;
export const ceilingConnections = 2;
/** The ceiling's rows are built before it starts (~250 bytes each); 200k rows/s is 1.5× the best
 *  seen here (~130k), and a run that exhausts them is flagged. */
export const ceilingMaxRowsPerSecond = 200_000;
export const rssSampleIntervalMs = 200;

export function scenarioShape(scenario: Scenario, options: IngestOptions) {
  const connections = options.connections * scenario.connectionsFactor;
  const eventsPerRequest = scenario.payload === 'bulk' ? options.batch : 1;
  const path = scenario.payload === 'bulk' ? ('/events/bulk' as const) : ('/events' as const);
  const bodyOf = (events: UniqueEvents) =>
    scenario.payload === 'bulk'
      ? () => events.nextBulkBody(eventsPerRequest)
      : () => events.nextSingleBody();
  return { connections, eventsPerRequest, path, bodyOf };
}

/** A body like the ones sent (same prefix lengths, a 6-digit counter), for the bytes column. */
export function sampleEvents(
  context: { readonly runTag: string; readonly run: number; readonly timestamp: number },
  scenario: Scenario,
): UniqueEvents {
  const events = uniqueEvents({
    idPrefix: `${context.runTag}-${context.run}-single-durable`,
    eventName: 'bench',
    timestamp: context.timestamp,
    eventBytes: scenario.eventBytes,
  });
  for (let i = 0; i < 100_000; i++) events.nextSingleBody();
  return events;
}
