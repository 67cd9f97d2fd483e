// Reads a bounded request body. 413 comes from Content-Length before a byte is read, and a gzip
// body stops inflating at the limit. uWS's idle timer restarts on every byte, so a trickled body
// is cut by our own absolute deadline instead.
import { gunzip } from 'node:zlib';
import type { HttpRequest } from 'uWebSockets.js';
import { problem, type Problem } from '../errors.js';
import type { Exchange } from './exchange.js';

/** Everything needed from the request, read synchronously: HttpRequest dies with the callback. */
export interface RequestHead {
  readonly method: string;
  readonly url: string;
  readonly query: string;
  readonly contentType: string;
  readonly contentLength: string;
  readonly contentLengthCount: number;
  readonly transferEncoding: string;
  readonly contentEncoding: string;
  readonly apiKey: string;
  readonly authorization: string;
  readonly ifNoneMatch: string;
  readonly origin: string;
  /** 431 when a header read here is over MAX_HEADER_BYTES, 414 when the query string is: every
   *  route answers it before reading anything else, so no parser ever sees an unbounded value. */
  readonly tooLarge: Problem | null;
}

export function readHead(req: HttpRequest, maxHeaderBytes: number): RequestHead {
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
  const head = {
    method: req.getMethod(),
    url: req.getUrl(),
    query,
    contentType: header('content-type'),
    contentLength: header('content-length'),
    contentLengthCount,
    transferEncoding: header('transfer-encoding'),
    contentEncoding: header('content-encoding').trim().toLowerCase(),
    apiKey: header('x-api-key'),
    authorization: header('authorization'),
    ifNoneMatch: header('if-none-match'),
    origin: header('origin'),
  };
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
  return { ...head, tooLarge };
}

/** UTF-8 takes at most 3 bytes per UTF-16 unit, so a value of ordinary length is never counted. */
function fitsIn(value: string, maxBytes: number): boolean {
  return value.length * 3 <= maxBytes || Buffer.byteLength(value) <= maxBytes;
}

export interface BodyLimits {
  readonly maxBodyBytes: number;
  readonly bodyTimeoutMs: number;
}

export type BodyResult =
  | { readonly ok: true; readonly body: Buffer }
  /** close: the connection must be closed because unread body bytes may still follow. */
  | { readonly ok: false; readonly problem: Problem; readonly close: boolean };

/** Header checks that need no body: framing, media type, size. Null when the request may be read. */
export function checkBodyHead(head: RequestHead, limits: BodyLimits): Problem | null {
  // Two Content-Length headers, or one beside Transfer-Encoding, are read differently by different
  // proxies (request smuggling); uWS would silently use the first.
  if (head.contentLengthCount > 1)
    return problem('bad_framing', 'More than one Content-Length header.');
  if (head.transferEncoding !== '') {
    return head.contentLength !== ''
      ? problem('bad_framing', 'Content-Length and Transfer-Encoding must not both be sent.')
      : problem(
          'length_required',
          'Send the body with a Content-Length header (chunked bodies are not accepted).',
        );
  }
  if (head.contentLength === '')
    return problem('length_required', 'Send the body with a Content-Length header.');
  if (!/^\d{1,15}$/.test(head.contentLength))
    return problem('bad_framing', 'Content-Length is not a number.');
  const [mediaTypeText = '', ...parameters] = head.contentType.split(';');
  const mediaType = mediaTypeText.trim().toLowerCase();
  if (mediaType !== 'application/json') {
    return problem(
      'unsupported_media_type',
      `Content-Type must be application/json (got ${JSON.stringify(mediaType || 'none')}).`,
    );
  }
  // The body is always decoded as UTF-8; one labelled otherwise would be read as something it is not.
  const charset = declaredCharset(parameters);
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    return problem(
      'unsupported_media_type',
      `The body must be UTF-8 (Content-Type declares charset ${JSON.stringify(charset)}).`,
    );
  }
  if (
    head.contentEncoding !== '' &&
    head.contentEncoding !== 'identity' &&
    head.contentEncoding !== 'gzip'
  ) {
    return problem(
      'unsupported_media_type',
      `Content-Encoding must be gzip or identity (got ${JSON.stringify(head.contentEncoding)}).`,
    );
  }
  if (Number(head.contentLength) > limits.maxBodyBytes) {
    return problem(
      'payload_too_large',
      `The body is ${head.contentLength} bytes; the limit is ${limits.maxBodyBytes} (MAX_BODY_BYTES).`,
    );
  }
  return null;
}

/** The charset parameter of a Content-Type, lower-cased and unquoted, if one is given. */
function declaredCharset(parameters: readonly string[]): string | undefined {
  for (const parameter of parameters) {
    const equals = parameter.indexOf('=');
    if (equals < 0 || parameter.slice(0, equals).trim().toLowerCase() !== 'charset') continue;
    return parameter
      .slice(equals + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .toLowerCase();
  }
  return undefined;
}

/** Call synchronously in the handler after checkBodyHead passed: onData must be attached before
 *  the handler returns. discard: consume the body without keeping it (resolves with an empty
 *  body), so a refusal can be answered on a connection that stays open. */
export function readBody(
  exchange: Exchange,
  head: RequestHead,
  limits: BodyLimits,
  options: { discard?: boolean } = {},
): Promise<BodyResult> {
  const length = Number(head.contentLength);
  if (length === 0) return Promise.resolve({ ok: true, body: Buffer.alloc(0) });
  return new Promise<BodyResult>((resolve) => {
    // Sized by what arrives, not by what Content-Length announces: a client announcing
    // MAX_BODY_BYTES and trickling would pin that much per connection, and 300 slow bodies
    // allocating 100 KB each per 2 s deadline forced mark-compacts on this thread
    // (chaos/slow-clients). A body that arrives in one chunk still gets one exact-size buffer.
    let body = Buffer.alloc(0);
    let received = 0;
    const deadline = setTimeout(() => {
      resolve({
        ok: false,
        problem: problem(
          'body_timeout',
          `The body did not arrive within ${limits.bodyTimeoutMs} ms (BODY_TIMEOUT_MS).`,
        ),
        close: true,
      });
    }, limits.bodyTimeoutMs);
    exchange.onAbort = () => clearTimeout(deadline);
    exchange.res.onData((chunk, isLast) => {
      if (received + chunk.byteLength > length) {
        clearTimeout(deadline);
        resolve({
          ok: false,
          problem: problem('bad_framing', 'The body is longer than its Content-Length.'),
          close: true,
        });
        return;
      }
      if (options.discard) {
        received += chunk.byteLength;
        if (isLast) {
          clearTimeout(deadline);
          resolve({ ok: true, body });
        }
        return;
      }
      // Doubling keeps the copies under 2× the body, and the buffer under 2× what arrived.
      if (received + chunk.byteLength > body.length) {
        const grown = Buffer.allocUnsafe(
          Math.min(length, Math.max(2 * body.length, received + chunk.byteLength)),
        );
        body.copy(grown, 0, 0, received);
        body = grown;
      }
      // The chunk's memory is reclaimed when this callback returns: copy it now.
      body.set(new Uint8Array(chunk), received);
      received += chunk.byteLength;
      if (!isLast) return;
      clearTimeout(deadline);
      if (head.contentEncoding !== 'gzip') {
        resolve({ ok: true, body: received === length ? body : body.subarray(0, received) });
        return;
      }
      // Inflate off the event loop, stopping at the limit: a 1 KB bomb never becomes 1 GB.
      gunzip(
        body.subarray(0, received),
        { maxOutputLength: limits.maxBodyBytes },
        (err, inflated) => {
          if (!err) resolve({ ok: true, body: inflated });
          else if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
            resolve({
              ok: false,
              problem: problem(
                'payload_too_large',
                `The body inflates past ${limits.maxBodyBytes} bytes (MAX_BODY_BYTES).`,
              ),
              close: false,
            });
          // zlib's own message stays out of the answer: it is not part of the API.
          else
            resolve({
              ok: false,
              problem: problem('invalid_encoding', 'The gzip body is corrupt.'),
              close: false,
            });
        },
      );
    });
  });
}
