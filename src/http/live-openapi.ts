// GET /live in the OpenAPI document: an upgrade to a WebSocket, whose messages OpenAPI cannot
// describe; the description states the contract and docs/api.md has it in full.
import { problemResponse, type Json } from './openapi.js';

export const livePathItem: Json = {
  get: {
    summary: 'Live events and totals over a WebSocket',
    description: [
      'Upgrades to a WebSocket (JSON text frames). No key in the URL: each subscribe message',
      'carries it. Client → server, one per stream: {"type":"subscribe","stream":"metrics"|"events",',
      '"key"?: read key, "event_name"?, "channel"?, "window_seconds"?: 60 to',
      'METRICS_MAX_WINDOW_DAYS × 86400 − 1, default 86400}. Server → client:',
      '{"type":"metrics","totals":{"count","unique_users"},"window_seconds","as_of"} at once and',
      'on commits, at most once a second, equal to GET /metrics?from=as_of−window&to=as_of;',
      '{"type":"subscribed","stream":"events"} once the events subscription is in place, then',
      '{"type":"event","event":{…an export line…}} for each event committed after it, at most',
      'LIVE_EVENTS_PER_SECOND; {"type":"dropped","count":N} at most once a',
      'second for the rest; {"type":"error","code","detail"} then close 1008 (invalid_message,',
      'unauthorized, insufficient_scope, too_many_auth_failures) or 1013 (too_many_clients).',
      'Details: docs/api.md#live.',
    ].join(' '),
    parameters: [
      { name: 'Upgrade', in: 'header', required: true, schema: { const: 'websocket' } },
      { name: 'Sec-WebSocket-Key', in: 'header', required: true, schema: { type: 'string' } },
      { name: 'Sec-WebSocket-Version', in: 'header', required: true, schema: { const: '13' } },
    ],
    responses: {
      '101': { description: 'Switching Protocols: the connection is now a WebSocket.' },
      '426': problemResponse(['upgrade_required']),
    },
  },
};
