// Building events and sending them, as a client would.
import { randomUUID } from 'node:crypto';

export interface TestEvent {
  event_id?: string;
  event_name: string;
  user_id: string;
  timestamp: number;
  channel?: string;
  campaign_id?: string;
  tags?: string[];
  metadata?: Record<string, unknown>;
}

export function makeEvent(overrides: Partial<TestEvent> = {}): TestEvent {
  return {
    event_id: randomUUID(),
    event_name: 'purchase',
    user_id: 'u1',
    timestamp: 1_700_000_000,
    channel: 'web',
    ...overrides,
  };
}

export interface JsonResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown>;
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return jsonResponse(res);
}

export async function getJson(
  url: string,
  headers: Record<string, string> = {},
): Promise<JsonResponse> {
  return jsonResponse(await fetch(url, { headers }));
}

async function jsonResponse(res: Response): Promise<JsonResponse> {
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}
