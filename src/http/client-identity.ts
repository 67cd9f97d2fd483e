// Who a request counts against for per-client limits (the /metrics rate limit, concurrent exports):
// the authenticated key when keys are configured, else the peer address. Read synchronously in
// the handler: the response's address is gone once the request is answered or aborted.
import type { HttpResponse } from 'uWebSockets.js';

const decoder = new TextDecoder();

export function clientIdentity(res: HttpResponse, keyId: string | null): string {
  if (keyId !== null) return `key:${keyId}`;
  return `ip:${decoder.decode(res.getRemoteAddressAsText())}`;
}
