// The ingest load, by the driver the options name: autocannon in this process (bodies built in
// JavaScript), or wrk as a child process (bodies built in its Lua from the same pieces).
import { driveLoad, type LoadResult } from '../lib/drive-load.js';
import { driveWrk } from '../lib/drive-wrk.js';
import type { UniqueEvents } from '../lib/unique-events.js';
import type { LoadDriver } from './options.js';

export interface IngestLoad {
  readonly url: string;
  readonly path: '/events' | '/events/bulk';
  readonly connections: number;
  readonly durationSeconds: number;
  readonly events: UniqueEvents;
  readonly eventsPerRequest: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly onTick?: (elapsedSeconds: number, responses: number) => void;
}

/** generatorCpuSeconds: a child driver's CPU (null: the driver runs in this process, whose CPU
 *  the bench reads itself). */
export async function driveIngest(
  driver: LoadDriver,
  load: IngestLoad,
): Promise<LoadResult & { generatorCpuSeconds: number | null }> {
  const { events, eventsPerRequest } = load;
  if (driver === 'wrk') return driveWrk({ ...load, body: events.pieces() });
  const nextBody =
    eventsPerRequest === 1
      ? () => events.nextSingleBody()
      : () => events.nextBulkBody(eventsPerRequest);
  return { ...(await driveLoad({ ...load, nextBody })), generatorCpuSeconds: null };
}
