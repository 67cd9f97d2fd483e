// Entry point of the slow-client swarm's own process (started by slow-swarm-process.ts): runs the
// swarm and reports over the IPC channel, so its sockets and timers never share an event loop with
// the client that measures the normal load's latency.
import { startSlowSwarm, type SlowKind } from './slow-client-swarm.js';
import type { SwarmChildOptions, SwarmCommand, SwarmReport } from './slow-swarm-messages.js';

const send = (report: SwarmReport, then?: () => void) => process.send!(report, then);

const options = JSON.parse(process.argv[2] ?? '') as SwarmChildOptions;
const swarm = startSlowSwarm(options);
const maxOpen: Record<SlowKind, number> = { 'slow-header': 0, 'slow-body': 0 };
const reporting = setInterval(() => {
  const open = { 'slow-header': swarm.open('slow-header'), 'slow-body': swarm.open('slow-body') };
  maxOpen['slow-header'] = Math.max(maxOpen['slow-header'], open['slow-header']);
  maxOpen['slow-body'] = Math.max(maxOpen['slow-body'], open['slow-body']);
  send({ type: 'open', open });
}, options.reportEveryMs);

process.on('message', (command: SwarmCommand) => {
  if (command.type !== 'stop') return;
  clearInterval(reporting);
  swarm.stop();
  send({ type: 'stopped', cuts: swarm.cuts, connectErrors: swarm.connectErrors, maxOpen }, () =>
    process.exit(0),
  );
});
// The scenario died or was interrupted: do not leave 600 sockets trickling into the server.
process.on('disconnect', () => process.exit(0));
