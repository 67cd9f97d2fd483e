// The ingest benchmark's load driver hands autocannon each request's bytes itself (an internal
// hook of autocannon 8, see bench/lib/drive-load.ts). A node:http server on loopback receives
// them: every request must be well framed, carry the configured headers, and have a body of its
// own, or the benchmark's unique events would collapse into duplicates.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { driveLoad } from '../../bench/lib/drive-load.js';
import { driveWrk } from '../../bench/lib/drive-wrk.js';
import { uniqueEvents } from '../../bench/lib/unique-events.js';

interface Received {
  readonly method: string;
  readonly url: string;
  readonly contentType: string | undefined;
  readonly apiKey: string | undefined;
  readonly body: string;
}

describe('bench load driver', () => {
  const received: Received[] = [];
  let server: Server;
  let url: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push({
          method: req.method ?? '',
          url: req.url ?? '',
          contentType: req.headers['content-type'],
          apiKey: req.headers['x-api-key'] as string | undefined,
          body: Buffer.concat(chunks).toString('utf8'),
        });
        res.writeHead(202, { 'content-type': 'application/json' }).end('{"status":"stored"}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('sends every request with its own body, framed and with the given headers', async () => {
    const events = uniqueEvents({ idPrefix: 'driver', eventName: 'purchase', timestamp: 1 });
    const result = await driveLoad({
      url,
      path: '/events/bulk',
      connections: 4,
      durationSeconds: 1,
      // Bodies of different lengths: each request must carry its own Content-Length.
      nextBody: () => events.nextBulkBody(1 + (events.issued % 3)),
      headers: { 'x-api-key': 'k1' },
    });

    expect(result.responses).toBeGreaterThan(10);
    expect(result.statusCounts).toEqual({ '202': result.responses });
    expect(result.errors).toBe(0);
    // Requests cut off at the end of the run may reach the server without a response counted.
    expect(received.length).toBeGreaterThanOrEqual(result.responses);
    for (const request of received) {
      expect(request).toMatchObject({
        method: 'POST',
        url: '/events/bulk',
        contentType: 'application/json',
        apiKey: 'k1',
      });
      expect((JSON.parse(request.body) as { events: unknown[] }).events.length).toBeGreaterThan(0);
    }
    const bodies = new Set(received.map((request) => request.body));
    expect(bodies.size).toBe(received.length);
  });

  // .ci/run installs Debian's wrk: without it this fails (driveWrk cannot start it).
  it('drives wrk with bodies built in its Lua: unique events, framed, with the given headers', async () => {
    const events = uniqueEvents({ idPrefix: 'wrk', eventName: 'purchase', timestamp: 7 });
    const drive = (path: '/events' | '/events/bulk', eventsPerRequest: number) =>
      driveWrk({
        url,
        path,
        connections: 2,
        durationSeconds: 1,
        body: events.pieces(),
        eventsPerRequest,
        headers: { 'x-api-key': 'k2' },
      });
    const single = await drive('/events', 1);
    const bulk = await drive('/events/bulk', 3);
    for (const result of [single, bulk]) {
      expect(result.responses).toBeGreaterThan(10);
      expect(result.statusCounts).toEqual({ '202': result.responses });
      expect(result.errors).toBe(0);
      expect(result.generatorCpuSeconds).toBeGreaterThan(0);
      expect(result.generatorCpuSeconds).toBeLessThan(5);
    }
    // The first test's last requests may still arrive: this test's carry its own key.
    const mine = received.filter((request) => request.apiKey === 'k2');
    const singles = mine.filter((request) => request.url === '/events');
    const bulks = mine.filter((request) => request.url === '/events/bulk');
    expect(singles.length + bulks.length).toBe(mine.length);
    expect(singles.length).toBeGreaterThanOrEqual(single.responses);
    expect(bulks.length).toBeGreaterThanOrEqual(bulk.responses);
    const ids: string[] = [];
    for (const request of singles) {
      expect(request).toMatchObject({ method: 'POST', contentType: 'application/json' });
      const event = JSON.parse(request.body) as { event_id: string };
      expect(event).toMatchObject({ event_name: 'purchase', timestamp: 7, channel: 'web' });
      ids.push(event.event_id);
    }
    for (const request of bulks) {
      expect(request).toMatchObject({ method: 'POST', contentType: 'application/json' });
      const { events: batch } = JSON.parse(request.body) as { events: { event_id: string }[] };
      expect(batch).toHaveLength(3);
      ids.push(...batch.map((e) => e.event_id));
    }
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('bench unique events', () => {
  it('pads each event with metadata to about the requested size, keeping it unique', () => {
    const events = uniqueEvents({
      idPrefix: 'pad',
      eventName: 'purchase',
      timestamp: 1,
      eventBytes: 200_000,
    });
    const bodies = Array.from({ length: 20 }, () => events.nextSingleBody());
    const parsed = bodies.map((b) => JSON.parse(b) as { event_id: string; metadata: object });
    expect(new Set(parsed.map((e) => e.event_id)).size).toBe(20);
    expect(bodies.map((b) => Math.abs(b.length - 200_000) < 100)).toEqual(bodies.map(() => true));
  });
});
