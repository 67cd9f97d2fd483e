// The request head: every header and the query string a route reads, copied synchronously (uWS's
// HttpRequest dies with the callback) and bounded by MAX_HEADER_BYTES before any parser sees them.
import type { HttpRequest } from 'uWebSockets.js';
import { problem, type Problem } from '../errors.js';

/** Everything a route reads from the request. */
export interface RequestHead {
  readonly method: string;
  readonly url: string;
  readonly query: string;
  readonly contentType: string;
  readonly contentLength: string;
  readonly contentLengthCount: number;
  readonly transferEncoding: string;
  readonly contentEncoding: string;
  /** Lower-cased; read by the routes that can answer compressed. */
  readonly acceptEncoding: string;
  readonly apiKey: string;
  readonly authorization: string;
  readonly ifNoneMatch: string;
  readonly origin: string;
  /** The `:name` segment of a route path that has one (/admin/keys/:id), as sent. */
  readonly pathParameter?: string;
  /** 431 when a header read here is over MAX_HEADER_BYTES, 414 when the query string is: every
   *  route answers it before reading anything else, so no parser ever sees an unbounded value. */
  readonly tooLarge: Problem | null;
}

/** hasPathParameter: the route has a `:name` segment, read here so the head stays one object. */
export function readHead(
  req: HttpRequest,
  maxHeaderBytes: number,
  hasPathParameter = false,
): RequestHead {
  let contentLengthCount = 0;
  req.forEach((name) => {
    if (name === 'content-length') contentLengthCount++;
  });
  let oversizedHeader: string | undefined;
  const header = (name: string): string => {
    const value = req.getHeader(name);
    if (oversizedHeader === undefined && !fitsIn(value, maxHeaderBytes)) oversizedHeader = name;
    return value;
  };
  const query = req.getQuery() ?? '';
  const contentType = header('content-type');
  const contentLength = header('content-length');
  const transferEncoding = header('transfer-encoding');
  const contentEncoding = header('content-encoding').trim().toLowerCase();
  const acceptEncoding = header('accept-encoding').toLowerCase();
  const apiKey = header('x-api-key');
  const authorization = header('authorization');
  const ifNoneMatch = header('if-none-match');
  const origin = header('origin');
  // The header is named, never quoted: its value may be a credential.
  const tooLarge =
    oversizedHeader !== undefined
      ? problem(
          'header_too_large',
          `The ${oversizedHeader} header is longer than ${maxHeaderBytes} bytes (MAX_HEADER_BYTES).`,
        )
      : fitsIn(query, maxHeaderBytes)
        ? null
        : problem(
            'uri_too_long',
            `The query string is longer than ${maxHeaderBytes} bytes (MAX_HEADER_BYTES).`,
          );
  // One literal, never `{ ...head, tooLarge }`: on Node 20 (V8 11.3) an object copied by spread
  // and given one more field is slow to build, and what it holds outlives every minor GC until a
  // full one (test/unit/hot-path-objects.test.ts keeps the pattern off the ingest path).
  return {
    method: req.getMethod(),
    url: req.getUrl(),
    query,
    contentType,
    contentLength,
    contentLengthCount,
    transferEncoding,
    contentEncoding,
    acceptEncoding,
    apiKey,
    authorization,
    ifNoneMatch,
    origin,
    pathParameter: hasPathParameter ? (req.getParameter(0) ?? '') : undefined,
    tooLarge,
  };
}

/** UTF-8 takes at most 3 bytes per UTF-16 unit, so a value of ordinary length is never counted. */
function fitsIn(value: string, maxBytes: number): boolean {
  return value.length * 3 <= maxBytes || Buffer.byteLength(value) <= maxBytes;
}

/** What a route that reads nothing from the request is given in place of its head. */
export const unreadHead: RequestHead = Object.freeze({
  method: '',
  url: '',
  query: '',
  contentType: '',
  contentLength: '',
  contentLengthCount: 0,
  transferEncoding: '',
  contentEncoding: '',
  acceptEncoding: '',
  apiKey: '',
  authorization: '',
  ifNoneMatch: '',
  origin: '',
  tooLarge: null,
});
