// A GET /events/export client over node:net that takes the body only as fast as a test says: the
// socket stays paused, so what it does not take stays in its buffers and the server meets
// backpressure, as it would from a slow or hostile reader.
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

/** The bytes a chunked body ends with when the server finished it (a cut body lacks them). */
const lastChunk = '\r\n0\r\n\r\n';
const headWaitMs = 15_000;

export interface ExportReader {
  /** The status line and headers. */
  readonly status: number;
  readonly head: string;
  /** Body bytes (chunk framing included) taken so far. */
  readonly taken: number;
  /** Lets the reader take `bytes` more, now and as they arrive. */
  allow(bytes: number): void;
  /** Takes everything until the server closes the connection. complete: the body was ended, not
   *  cut. */
  drain(): Promise<{ readonly taken: number; readonly complete: boolean }>;
  destroy(): void;
}

/** localAddress: another 127.0.0.0/8 address, to look like a different client. */
export async function openExportReader(
  port: number,
  query: string,
  localAddress?: string,
): Promise<ExportReader> {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  socket.pause();
  socket.on('error', () => undefined); // 'close' follows; tests destroy readers on purpose
  await once(socket, 'connect');
  socket.write(`GET /events/export?${query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  let received = await readHead(socket);
  const headEnd = received.indexOf('\r\n\r\n') + 4;
  const head = received.slice(0, headEnd);
  let taken = received.length - headEnd;
  let tail = received.slice(headEnd).slice(-lastChunk.length);
  const note = (chunk: Buffer) => {
    taken += chunk.length;
    tail = (tail + chunk.toString('latin1')).slice(-lastChunk.length);
  };
  received = '';
  let allowance = 0;
  const take = () => {
    while (allowance > 0) {
      const chunk = socket.read(Math.min(allowance, socket.readableLength)) as Buffer | null;
      if (chunk === null || chunk.length === 0) return;
      note(chunk);
      allowance -= chunk.length;
    }
  };
  socket.on('readable', take);
  return {
    status: Number(head.split(' ')[1]),
    head,
    get taken() {
      return taken;
    },
    allow: (bytes) => {
      allowance += bytes;
      take();
    },
    drain: async () => {
      const closed = once(socket, 'close');
      socket.removeListener('readable', take);
      socket.on('data', note);
      socket.resume();
      await closed;
      return { taken, complete: tail === lastChunk };
    },
    destroy: () => socket.destroy(),
  };
}

/** Reads until the end of the response head; resolves with everything read so far (latin1). */
async function readHead(socket: Socket): Promise<string> {
  let text = '';
  const giveUpAt = Date.now() + headWaitMs;
  while (!text.includes('\r\n\r\n')) {
    if (socket.destroyed || Date.now() > giveUpAt) {
      socket.destroy();
      throw new Error(`no export response head: ${JSON.stringify(text.slice(0, 200))}`);
    }
    const chunk = socket.read() as Buffer | null;
    if (chunk === null) await Promise.race([once(socket, 'readable'), once(socket, 'close')]);
    else text += chunk.toString('latin1');
  }
  return text;
}
