// The one place that writes to a uWS response. A response is valid only until it is ended or the
// client aborts; writing after either is undefined behaviour in native code, so every write checks.
import type { HttpResponse } from 'uWebSockets.js';
import { problemBody, problemStatus, type Problem } from '../errors.js';
import { IntrusiveList, type ListLinks } from '../intrusive-list.js';

/** Its links put it in the list of open exchanges until it is answered or aborted. */
export interface Exchange extends ListLinks<Exchange> {
  readonly res: HttpResponse;
  aborted: boolean;
  done: boolean;
  onAbort?: () => void;
  /** Written on whatever response this exchange ends with (CORS headers of the route). */
  headers?: Headers;
}

const openExchanges = new IntrusiveList<Exchange>();

/** Requests begun and not yet answered or aborted; shutdown waits for this to reach zero. */
export function countOpenExchanges(): number {
  return openExchanges.size;
}

/** Closes the connection of every request still unanswered; returns how many. Shutdown does this
 *  at its deadline: an export to a slow reader would otherwise hold its pool connection, and so
 *  the process, past it. Each one's abort handler runs, so whatever serves it stops. */
export function closeOpenExchanges(): number {
  let closed = 0;
  openExchanges.forEach((exchange) => {
    closed++;
    exchange.res.close(); // its abort handler takes it out of the list
  });
  return closed;
}

/** Must run synchronously in the handler, before any await: uWS terminates the process when an
 *  async handler returns without an abort handler attached. */
export function beginExchange(res: HttpResponse): Exchange {
  const exchange: Exchange = {
    res,
    aborted: false,
    done: false,
    onAbort: undefined,
    headers: undefined,
    listOlder: undefined,
    listNewer: undefined,
  };
  openExchanges.add(exchange);
  res.onAborted(() => {
    openExchanges.delete(exchange);
    exchange.aborted = true;
    exchange.onAbort?.();
  });
  return exchange;
}

const statusLines: Record<number, string> = {
  200: '200 OK',
  201: '201 Created',
  202: '202 Accepted',
  204: '204 No Content',
  302: '302 Found',
  304: '304 Not Modified',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  408: '408 Request Timeout',
  409: '409 Conflict',
  411: '411 Length Required',
  413: '413 Content Too Large',
  414: '414 URI Too Long',
  415: '415 Unsupported Media Type',
  422: '422 Unprocessable Content',
  429: '429 Too Many Requests',
  431: '431 Request Header Fields Too Large',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

export type Headers = Readonly<Record<string, string>>;

/** On every response: a browser must never guess a type other than the one sent (a JSON body
 *  read as HTML, say). */
const noSniff = { name: 'x-content-type-options', value: 'nosniff' } as const;

export interface SendOptions {
  readonly headers?: Headers;
  readonly contentType?: string;
  /** Close the connection after this response, e.g. when an unread body is still arriving. */
  readonly close?: boolean;
  /** Sent as Retry-After. */
  readonly retryAfterSeconds?: number;
}

export function send(
  exchange: Exchange,
  status: number,
  body: string | Uint8Array,
  options: SendOptions = {},
): void {
  finish(exchange, () => {
    const { res } = exchange;
    writeHead(res, status, options.contentType ?? 'application/json', exchange.headers);
    if (options.headers)
      for (const name in options.headers) res.writeHeader(name, options.headers[name]!);
    if (options.retryAfterSeconds !== undefined)
      res.writeHeader('retry-after', String(options.retryAfterSeconds));
    res.end(body, options.close ?? false);
  });
}

/** A response without a body (204): no Content-Type, and no Content-Length (RFC 9110 §8.6). */
export function sendEmpty(exchange: Exchange, status: number, headers: Headers): void {
  finish(exchange, () => {
    writeHead(exchange.res, status, undefined, headers);
    exchange.res.endWithoutBody();
  });
}

export function sendJson(
  exchange: Exchange,
  status: number,
  value: unknown,
  options: SendOptions = {},
): void {
  send(exchange, status, JSON.stringify(value), options);
}

export function sendProblem(
  exchange: Exchange,
  p: Problem,
  options: Pick<SendOptions, 'headers' | 'close'> = {},
): void {
  // Field by field, not `{ ...options, contentType }`: a spread copy given one more field is a slow
  // object on Node 20 (see readHead), and refusals come fastest when the server is overloaded.
  send(exchange, problemStatus(p), problemBody(p), {
    contentType: 'application/problem+json',
    headers: options.headers,
    close: options.close,
    retryAfterSeconds: p.retryAfterSeconds,
  });
}

/** Status and headers of a streamed response; the body follows with writeStream. */
export function startStream(exchange: Exchange, status: number, contentType: string): void {
  if (exchange.aborted || exchange.done) return;
  exchange.res.cork(() => writeHead(exchange.res, status, contentType, exchange.headers));
}

/** Writes a chunk; resolves once uWS can take more (backpressure), false if the client is gone
 *  or has not read anything for stallTimeoutMs (its connection is then closed). */
export function writeStream(
  exchange: Exchange,
  chunk: string,
  stallTimeoutMs: number,
): Promise<boolean> {
  if (exchange.aborted || exchange.done) return Promise.resolve(false);
  const { res } = exchange;
  let accepted = true;
  res.cork(() => {
    accepted = res.write(chunk);
  });
  if (accepted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const previousOnAbort = exchange.onAbort;
    const settle = (writable: boolean) => {
      clearTimeout(stall);
      exchange.onAbort = previousOnAbort;
      resolve(writable);
    };
    // A reader that stops reading would otherwise hold its database connection forever.
    const stall = setTimeout(() => {
      finish(exchange, () => res.close());
      settle(false);
    }, stallTimeoutMs);
    exchange.onAbort = () => {
      previousOnAbort?.();
      settle(false);
    };
    res.onWritable(() => {
      settle(!exchange.aborted);
      return true;
    });
  });
}

/** Ends a streamed response; abort: close the connection instead, marking the body incomplete. */
export function finishStream(exchange: Exchange, options: { abort?: boolean } = {}): void {
  finish(exchange, () => {
    if (options.abort) exchange.res.close();
    else exchange.res.end();
  });
}

/** The last write of an exchange: marks it answered, then writes corked (one syscall, and required
 *  after an await). Nothing is written once it is answered or aborted. */
function finish(exchange: Exchange, write: () => void): void {
  if (exchange.aborted || exchange.done) return;
  exchange.done = true;
  openExchanges.delete(exchange);
  exchange.res.cork(write);
}

/** Status line, Content-Type (none for a body-less response), nosniff, then the given headers. */
function writeHead(
  res: HttpResponse,
  status: number,
  contentType: string | undefined,
  headers: Headers | undefined,
): void {
  res.writeStatus(statusLines[status] ?? String(status));
  if (contentType !== undefined) res.writeHeader('content-type', contentType);
  res.writeHeader(noSniff.name, noSniff.value);
  if (headers) for (const name in headers) res.writeHeader(name, headers[name]!);
}
