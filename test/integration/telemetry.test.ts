// GET /internal/metrics: one Prometheus exposition for the whole process, writer threads included.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent, postJson } from '../helpers/events.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const key = 'telemetry-key';
let db: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.dsn, { API_KEYS: key, RATE_LIMIT_METRICS_PER_MIN: '1' });
});
afterAll(async () => {
  await server.stop();
  await db.close();
});

async function scrape(): Promise<Map<string, number>> {
  const res = await fetch(`${server.url}/internal/metrics`, { headers: { 'x-api-key': key } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const match = /^(pulse_[^\s]+) (\S+)$/.exec(line);
    if (match) samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

describe('GET /internal/metrics', () => {
  it('needs the API key like the other API routes', async () => {
    expect((await fetch(`${server.url}/internal/metrics`)).status).toBe(401);
  });

  it('counts events inserted, duplicates and refusals as they happen', async () => {
    const before = await scrape();
    const events = [makeEvent(), makeEvent(), makeEvent()];
    const headers = { 'x-api-key': key };
    expect((await postJson(`${server.url}/events/bulk`, { events }, headers)).status).toBe(202);
    expect((await postJson(`${server.url}/events`, events[0], headers)).status).toBe(202);
    expect((await postJson(`${server.url}/events`, { user_id: 'u' }, headers)).status).toBe(400);
    const partial = { events: [makeEvent(), { user_id: 'u' }, { user_id: 'v' }] };
    const partialUrl = `${server.url}/events/bulk?partial=true`;
    expect((await postJson(partialUrl, partial, headers)).status).toBe(202);
    const after = await scrape();
    const delta = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
    expect(delta('pulse_events_inserted_total')).toBe(4);
    expect(delta('pulse_events_duplicate_total')).toBe(1);
    expect(delta('pulse_events_received_total{route="/events/bulk"}')).toBe(4);
    expect(delta('pulse_events_rejected_total{route="/events/bulk"}')).toBe(2);
    expect(delta('pulse_requests_rejected_total{route="/events",code="validation_failed"}')).toBe(
      1,
    );
    expect(delta('pulse_batch_size_events_count')).toBe(3);
    expect(after.get('pulse_queue_depth_events')).toBe(0);
  });

  it('counts metrics cache misses, hits and rate-limited requests', async () => {
    const before = await scrape();
    const url = `${server.url}/metrics?from=1699990000&to=1700010000`;
    const headers = { 'x-api-key': key };
    expect((await fetch(url, { headers })).status).toBe(200);
    expect((await fetch(url, { headers })).status).toBe(429);
    const after = await scrape();
    const delta = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
    expect(
      delta('pulse_metrics_cache_total{result="miss"}') +
        delta('pulse_metrics_cache_total{result="hit"}'),
    ).toBe(1);
    expect(delta('pulse_rate_limited_total')).toBe(1);
  });
});
