// Exact bytes to the server over node:net, and Content-Length framed responses back: fetch would
// normalise exactly what the hostile-input cases need to get wrong on purpose.
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  readonly status: number;
  readonly statusLine: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Header lines as sent (name: value), in order, for byte-level comparisons. */
  readonly headerLines: readonly string[];
  readonly body: string;
}

export interface RawConnection {
  readonly socket: Socket;
  write(bytes: string | Buffer): void;
  /** The next whole response, or null once the server closed without sending one. */
  next(): Promise<RawResponse | null>;
  /** Resolves once the server has closed the connection. */
  closed(): Promise<void>;
  readonly isClosed: boolean;
  destroy(): void;
}

/** Every wait is bounded: a missing response fails the test instead of hanging the run. */
const rawWaitMs = 30_000;

const open = new Set<Socket>();

/** Destroys every connection still open (afterEach). */
export function destroyRawConnections(): void {
  for (const socket of open) socket.destroy();
  open.clear();
}

/** localAddress: another 127.0.0.0/8 address, to look like a different client. */
export async function openRaw(port: number, localAddress?: string): Promise<RawConnection> {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  open.add(socket);
  await once(socket, 'connect');
  let buffered = Buffer.alloc(0);
  const responses: RawResponse[] = [];
  let isClosed = false;
  let wake: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (let parsed = parseResponse(buffered); parsed; parsed = parseResponse(buffered)) {
      responses.push(parsed.response);
      buffered = buffered.subarray(parsed.consumed);
    }
    wake?.();
  });
  socket.on('error', () => undefined); // 'close' follows and is what the tests look at
  socket.on('close', () => {
    isClosed = true;
    open.delete(socket);
    wake?.();
  });
  const waitFor = async (ready: () => boolean, what: string) => {
    const giveUpAt = Date.now() + rawWaitMs;
    while (!ready()) {
      if (Date.now() >= giveUpAt)
        throw new Error(`gave up waiting for ${what}; unparsed: ${buffered.toString('latin1')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 250);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };
  return {
    socket,
    write: (bytes) => socket.write(bytes),
    next: async () => {
      await waitFor(() => responses.length > 0 || isClosed, 'a response');
      return responses.shift() ?? null;
    },
    closed: () => waitFor(() => isClosed, 'the server to close the connection'),
    get isClosed() {
      return isClosed;
    },
    destroy: () => socket.destroy(),
  };
}

/** One request's bytes on a fresh connection; its response, or null if closed unanswered. */
export async function rawRequest(
  port: number,
  bytes: string | Buffer,
): Promise<RawResponse | null> {
  const connection = await openRaw(port);
  connection.write(bytes);
  const response = await connection.next();
  connection.destroy();
  return response;
}

/** One response from the front of `data` (Content-Length framed), or null if incomplete. */
function parseResponse(data: Buffer): { response: RawResponse; consumed: number } | null {
  const headEnd = data.indexOf('\r\n\r\n');
  if (headEnd < 0) return null;
  const [statusLine = '', ...headerLines] = data
    .subarray(0, headEnd)
    .toString('latin1')
    .split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers['content-length'] ?? 0);
  if (data.length < headEnd + 4 + length) return null;
  return {
    response: {
      status: Number(statusLine.split(' ')[1]),
      statusLine,
      headers,
      headerLines,
      body: data.subarray(headEnd + 4, headEnd + 4 + length).toString('utf8'),
    },
    consumed: headEnd + 4 + length,
  };
}

export function rawPost(
  path: string,
  headers: readonly string[],
  body: Buffer | string = '',
): Buffer {
  const head = [`POST ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...headers].join('\r\n');
  return Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), Buffer.from(body)]);
}

export function jsonPost(path: string, body: Buffer | string, extraHeaders: string[] = []): Buffer {
  return rawPost(
    path,
    [
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      ...extraHeaders,
    ],
    body,
  );
}

export function rawGet(path: string, headers: readonly string[] = []): string {
  return [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...headers, '', ''].join('\r\n');
}
