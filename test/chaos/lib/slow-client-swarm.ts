// Slowloris over raw sockets (node:net), so every byte and its timing is ours: `slow-header`
// connections trickle a never-ending header block, `slow-body` ones send complete headers and then
// trickle the body. A swarm keeps `size` of each open, reopening any the server cuts, and records
// for every cut how long the connection lived and what (if anything) the server answered.
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
  /** Connections currently open, by kind. */
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
}

export function startSlowSwarm(options: SlowSwarmOptions): SlowSwarm {
  const sockets = new Map<Socket, SlowKind>();
  const cuts: SlowCut[] = [];
  let connectErrors = 0;
  let stopped = false;

  const openOne = (kind: SlowKind) => {
    if (stopped) return;
    const socket = connect({ host: '127.0.0.1', port: options.port });
    sockets.set(socket, kind);
    let clockFrom = Date.now();
    let received = '';
    let connected = false;
    let trickle: NodeJS.Timeout | undefined;
    socket.setNoDelay(true);
    socket.on('connect', () => {
      connected = true;
      clockFrom = Date.now();
      if (kind === 'slow-header') {
        socket.write('POST /events/bulk HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
      } else {
        socket.write(
          'POST /events/bulk HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
            `Content-Length: ${options.bodyBytes}\r\n\r\n{`,
        );
        clockFrom = Date.now(); // the body deadline runs from here
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
      const ours = !sockets.has(socket);
      sockets.delete(socket);
      if (ours || stopped) return;
      if (connected) {
        const match = /^HTTP\/1\.1 (\d{3})/.exec(received);
        cuts.push({
          kind,
          aliveMs: Date.now() - clockFrom,
          status: match ? Number(match[1]) : undefined,
        });
      }
      // Keep the swarm at full size; a refused connect is retried after a pause.
      setTimeout(() => openOne(kind), connected ? 0 : 200);
    });
  };

  for (let i = 0; i < options.size; i++) {
    openOne('slow-header');
    openOne('slow-body');
  }
  return {
    open: (kind) => [...sockets.values()].filter((k) => k === kind).length,
    cuts,
    get connectErrors() {
      return connectErrors;
    },
    stop: () => {
      stopped = true;
      for (const socket of [...sockets.keys()]) {
        sockets.delete(socket);
        socket.destroy();
      }
    },
  };
}
