// A slow-client swarm (slow-client-swarm.ts) in a process of its own: 600 trickling sockets and
// their timers in the test's process slowed the very client whose latency the scenario measures.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SlowCut, SlowKind, SlowSwarmOptions } from './slow-client-swarm.js';
import type {
  OpenCounts,
  SwarmChildOptions,
  SwarmCommand,
  SwarmReport,
} from './slow-swarm-messages.js';

const projectRoot = fileURLToPath(new URL('../../..', import.meta.url));
const childScript = fileURLToPath(new URL('./slow-swarm-child.ts', import.meta.url));
/** How often the swarm reports its open counts: enough to see it reach full size promptly. */
const reportEveryMs = 200;

export interface SlowSwarmOutcome {
  /** Connections the server closed (those closed by stop() are not counted). */
  readonly cuts: readonly SlowCut[];
  /** Connect errors (e.g. the server refused more sockets). */
  readonly connectErrors: number;
  /** Highest number open at once, by kind (sampled every reportEveryMs). */
  readonly maxOpen: OpenCounts;
}

export interface SlowSwarmProcess {
  /** Connections open at the swarm's latest report, by kind. */
  open(kind: SlowKind): number;
  /** Closes every slow socket and ends the process. */
  stop(): Promise<SlowSwarmOutcome>;
}

export function spawnSlowSwarm(options: SlowSwarmOptions): SlowSwarmProcess {
  const childOptions: SwarmChildOptions = { ...options, reportEveryMs };
  const child = fork(childScript, [JSON.stringify(childOptions)], {
    cwd: projectRoot,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let open: OpenCounts = { 'slow-header': 0, 'slow-body': 0 };
  const outcome = new Promise<SlowSwarmOutcome>((resolve, reject) => {
    child.on('message', (report: SwarmReport) => {
      if (report.type === 'open') open = report.open;
      else resolve(report);
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`the slow-client swarm exited (${code ?? signal}) before reporting`)),
    );
  });
  // Rejections surface from stop(); until then, an early exit shows as a swarm that never opens.
  outcome.catch(() => undefined);
  return {
    open: (kind) => open[kind],
    stop: () => {
      const stop: SwarmCommand = { type: 'stop' };
      if (child.connected) child.send(stop);
      return outcome;
    },
  };
}
