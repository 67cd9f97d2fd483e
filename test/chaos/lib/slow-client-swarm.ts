// Slowloris over raw sockets (node:net), so every byte and its timing is ours: `slow-header`
// connections trickle a never-ending header block, `slow-body` ones send complete headers and then
// trickle the body. A swarm keeps `size` of each open, reopening any the server cuts, and records
// for every cut how long the connection lived and what (if anything) the server answered. It runs
// in a process of its own (slow-swarm-process.ts), away from the client that measures latency.
import { connect, type Socket } from 'node:net';

export type SlowKind = 'slow-header' | 'slow-body';

export interface SlowCut {
  readonly kind: SlowKind;
  /** From the last header byte (slow-body) or from connect (slow-header) to the close. */
  readonly aliveMs: number;
  /** Status line the server sent before closing, if any (e.g. 408). */
  readonly status: number | undefined;
}

export interface SlowSwarm {
  /** Connections currently open (connected, not yet closed), by kind. */
  open(kind: SlowKind): number;
  /** Connections the server closed (ours, closed by stop(), are not counted). */
  readonly cuts: SlowCut[];
  /** Connect errors (e.g. the server refused more sockets). */
  readonly connectErrors: number;
  stop(): void;
}

export interface SlowSwarmOptions {
  readonly port: number;
  readonly size: number;
  /** One byte per this many ms: well under uWS's 10 s idle timer, so only a deadline cuts it. */
  readonly trickleEveryMs: number;
  /** Content-Length the slow bodies announce. */
  readonly bodyBytes: number;
  /** The first connections are opened evenly over this many ms, as independent clients would
   *  arrive. Opened in one tick (and each replaced the moment it is cut), 300 slow bodies stayed
   *  in lockstep: one 300-wide burst of cuts and reconnects per body deadline. */
  readonly openOverMs: number;
}

export function startSlowSwarm(options: SlowSwarmOptions): SlowSwarm {
  const sockets = new Map<Socket, SlowKind>();
  const connectedSockets = new Set<Socket>();
  const cuts: SlowCut[] = [];
  let connectErrors = 0;
  let stopped = false;

  const openOne = (kind: SlowKind) => {
    if (stopped) return;
    const socket = connect({ host: '127.0.0.1', port: options.port });
    sockets.set(socket, kind);
    let clockFrom = performance.now();
    let received = '';
    let connected = false;
    let trickle: NodeJS.Timeout | undefined;
    socket.setNoDelay(true);
    socket.on('connect', () => {
      connected = true;
      connectedSockets.add(socket);
      clockFrom = performance.now();
      if (kind === 'slow-header') {
        socket.write('POST /events/bulk HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
      } else {
        socket.write(
          'POST /events/bulk HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
            `Content-Length: ${options.bodyBytes}\r\n\r\n{`,
        );
        clockFrom = performance.now(); // the body deadline runs from here
      }
      trickle = setInterval(
        () => socket.write(kind === 'slow-header' ? 'a' : ' '),
        options.trickleEveryMs,
      );
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
    });
    socket.on('error', () => {
      if (!connected) connectErrors++;
    });
    socket.on('close', () => {
      clearInterval(trickle);
      connectedSockets.delete(socket);
      const ours = !sockets.has(socket);
      sockets.delete(socket);
      if (ours || stopped) return;
      if (connected) {
        const match = /^HTTP\/1\.1 (\d{3})/.exec(received);
        cuts.push({
          kind,
          aliveMs: performance.now() - clockFrom,
          status: match ? Number(match[1]) : undefined,
        });
      }
      // A cut connection is replaced at once: the scenario is `size` of each kind open at all times
      // (slowloris keeps its count up), i.e. ~size / BODY_TIMEOUT_MS new slow bodies per second;
      // a client that gave up after its cut would test a milder load. A refused connect pauses.
      setTimeout(() => openOne(kind), connected ? 0 : 200);
    });
  };

  const firstOpens = Array.from({ length: options.size }, (_, i) =>
    setTimeout(
      () => {
        openOne('slow-header');
        openOne('slow-body');
      },
      (i * options.openOverMs) / options.size,
    ),
  );
  return {
    open: (kind) => [...connectedSockets].filter((s) => sockets.get(s) === kind).length,
    cuts,
    get connectErrors() {
      return connectErrors;
    },
    stop: () => {
      stopped = true;
      for (const timer of firstOpens) clearTimeout(timer);
      for (const socket of [...sockets.keys()]) {
        sockets.delete(socket);
        socket.destroy();
      }
    },
  };
}
