// The built-in dashboard: one HTML page, its script and its stylesheet, all from memory, and `/`
// sending a browser there. The page holds no data, so no route here needs a key; the page asks for
// one when /metrics does.
import { pageFiles, type DashboardPage } from '../dashboard-page.js';
import { send, type Exchange } from '../exchange.js';
import { ifNoneMatchIncludes } from '../if-none-match.js';
import type { Route } from '../route.js';
import type { RequestHead } from '../request-head.js';

export type { DashboardPage };

/** Nothing but the page's own files and its own origin: no inline script, no third party; the
 *  page's fetches and its /live WebSocket are same-origin ('self' covers ws: to the same host). */
const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Revalidated on every use (a 304 costs a round trip, not the bytes): the files keep their names
 *  across versions, so a cached copy must never outlive an upgrade. */
const cacheControl = 'no-cache';

const assetOperation = (summary: string, mediaType: string) => ({
  summary,
  responses: {
    '200': {
      description: 'The file; gzip-encoded when the request accepts gzip.',
      content: { [mediaType]: { schema: { type: 'string' } } },
    },
    '304': { description: 'Not modified (If-None-Match matched the ETag).' },
  },
});

export function dashboardRoutes(page: DashboardPage): Route[] {
  const route = { method: 'get', auth: 'none', refusedWhileDraining: false } as const;
  return [
    ...pageFiles.map(({ path, mediaType, summary }): Route => ({
      ...route,
      path,
      readsHead: true,
      handler: (exchange, head) => sendAsset(exchange, head, page, path),
      operation: assetOperation(summary, mediaType),
    })),
    {
      ...route,
      path: '/',
      readsHead: false,
      handler: (exchange) =>
        send(exchange, 302, '', {
          contentType: 'text/plain; charset=utf-8',
          headers: { location: '/dashboard' },
        }),
      operation: {
        summary: 'Redirects to the dashboard',
        responses: { '302': { description: 'Location: /dashboard' } },
      },
    },
  ];
}

function sendAsset(exchange: Exchange, head: RequestHead, page: DashboardPage, path: string) {
  const asset = page.get(path)!;
  const headers = {
    etag: asset.etag,
    'cache-control': cacheControl,
    vary: 'accept-encoding',
    'content-security-policy': contentSecurityPolicy,
    'referrer-policy': 'no-referrer',
  };
  if (head.ifNoneMatch !== '' && ifNoneMatchIncludes(head.ifNoneMatch, asset.etag))
    return send(exchange, 304, '', { headers });
  const gzip = acceptsGzip(head.acceptEncoding);
  send(exchange, 200, gzip ? asset.gzipped : asset.body, {
    contentType: asset.contentType,
    headers: gzip ? { ...headers, 'content-encoding': 'gzip' } : headers,
  });
}

/** `gzip` listed without `q=0` (RFC 9110 §12.5.3); one split of a header bounded by MAX_HEADER_BYTES. */
export function acceptsGzip(acceptEncoding: string): boolean {
  for (const coding of acceptEncoding.split(',')) {
    const [name = '', ...parameters] = coding.split(';').map((part) => part.trim());
    if (name !== 'gzip' && name !== 'x-gzip') continue;
    const q = parameters.find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  }
  return false;
}
