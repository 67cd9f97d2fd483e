// A /live client that never reads is closed once LIVE_MAX_BUFFERED_BYTES wait for it, instead of
// the server buffering everything the stream would send it.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent, postJson } from '../helpers/events.js';
import { spawnServer, type ServerProcess } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait-until.js';

let db: TestDatabase;
let server: ServerProcess;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await spawnServer(db.dsn, {
    LIVE_MAX_BUFFERED_BYTES: String(256 * 1024),
    LIVE_EVENTS_PER_SECOND: '10000',
    MAX_BODY_BYTES: String(4 * 1024 * 1024),
    BATCH_MAX_BYTES: String(8 * 1024 * 1024),
  });
});
afterAll(async () => {
  await server?.stop();
  await db?.close();
});

function rssBytes(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;
}

const now = Math.floor(Date.now() / 1000);
const big = 'x'.repeat(60_000);
const metadata = { a: big, b: big, c: big, d: big }; // ~240 KB an event

/** Posts ~115 MB of events; returns the bytes sent and the server's largest RSS meanwhile. */
async function postMany(): Promise<{ sent: number; maxRss: number }> {
  let sent = 0;
  let maxRss = 0;
  const sampler = setInterval(() => (maxRss = Math.max(maxRss, rssBytes(server.pid))), 50);
  try {
    for (let round = 0; round < 40; round++) {
      const events = Array.from({ length: 12 }, () => makeEvent({ timestamp: now, metadata }));
      const answer = await postJson(`${server.url}/events/bulk`, { events });
      expect(answer.status).toBe(202);
      sent += Buffer.byteLength(JSON.stringify(events));
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  } finally {
    clearInterval(sampler);
  }
  return { sent, maxRss };
}

it('closes a subscriber that stops reading, and the server does not hold what it missed', async () => {
  // Once without a subscriber: the ingest path's own peak, to compare with.
  const alone = await postMany();
  const socket = connect({ host: '127.0.0.1', port: server.port });
  await once(socket, 'connect');
  // A subscribe frame, masked as a client must (mask 0: the payload goes as it is).
  const subscribe = Buffer.from('{"type":"subscribe","stream":"events"}');
  socket.write(
    'GET /live HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  const [upgraded] = (await once(socket, 'data')) as [Buffer];
  expect(upgraded.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
  // From here on nothing is read: what the server sends piles up in the kernel, then in uWS.
  socket.pause();
  socket.write(
    Buffer.concat([Buffer.from([0x81, 0x80 | subscribe.length, 0, 0, 0, 0]), subscribe]),
  );
  await new Promise((resolve) => setTimeout(resolve, 500));
  const { sent, maxRss } = await postMany();
  await new Promise((resolve) => setTimeout(resolve, 1500));
  // Now read: the server closed the connection after a bounded part of the stream.
  let received = 0;
  socket.on('data', (chunk: Buffer) => (received += chunk.length));
  socket.resume();
  let closed = false;
  socket.on('error', () => undefined); // a reset is a close too
  socket.on('close', () => (closed = true));
  await waitUntil('the server to close the slow subscriber', () => closed, { timeoutMs: 30_000 });
  expect(sent).toBeGreaterThan(100 * 1024 * 1024);
  expect(received).toBeLessThan(sent / 4);
  // Holding what it missed, the server's peak would be the bytes sent above the one without it.
  expect(maxRss - alone.maxRss).toBeLessThan(sent / 2);
});
