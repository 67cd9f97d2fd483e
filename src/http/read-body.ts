// Reads a bounded request body. 413 comes from Content-Length before a byte is read, and a gzip
// body stops inflating at the limit. uWS's idle timer restarts on every byte, so a trickled body
// is cut by our own absolute deadline instead.
import { gunzip } from 'node:zlib';
import { problem, type Problem } from '../errors.js';
import type { Exchange } from './exchange.js';
import type { RequestHead } from './request-head.js';

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
    // MAX_BODY_BYTES and trickling would pin that much per connection (chaos/slow-clients).
    // A body that arrives in one chunk still gets one exact-size buffer.
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
