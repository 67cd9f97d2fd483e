// A Piscina task for the pollution test: writes one batch through the writer thread's own code
// (the module the server's pool loads), then reports whether Object.prototype was touched here.
import insertBatch from '../../src/workers/insert-batch-worker.js';
import type { InsertBatchTask } from '../../src/workers/insert-batch-messages.js';

export interface PollutionReport {
  readonly kind: string;
  readonly polluted: unknown;
  readonly ownPolluted: boolean;
  readonly constructorPolluted: unknown;
}

export default async function writeAndProbe(task: InsertBatchTask): Promise<PollutionReport> {
  const result = await insertBatch(task);
  const probe: Record<string, unknown> = {};
  return {
    kind: result.kind,
    polluted: probe.polluted,
    ownPolluted: Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'),
    constructorPolluted: (Object as unknown as Record<string, unknown>).polluted,
  };
}
