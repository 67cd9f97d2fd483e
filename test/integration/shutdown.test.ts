// Shutdown's edges, in-process. Requests still arriving on kept-alive connections: the listen socket
// is closed, but each open connection may send one more request, refused a loop turn later;
// shutdown must answer those before it judges itself, or it reports an unclean stop (exit 1) at
// random. And a request still streaming at SHUTDOWN_TIMEOUT_MS: it is cut, so the stop ends.
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent } from '../helpers/events.js';
import {
  destroyRawConnections,
  jsonPost,
  openRaw,
  rawGet,
  type RawConnection,
} from '../helpers/raw-http.js';
import { startTestServer } from '../helpers/server.js';

const connectionsPerRound = 150;
const rounds = 5;

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  destroyRawConnections();
  await db.close();
});

describe('shutdown with kept-alive connections', () => {
  it('answers every request that arrives during shutdown and still stops clean', async () => {
    const verdicts: boolean[] = [];
    const refusals = new Map<number, number>();
    for (let round = 0; round < rounds; round++) {
      const server = await startTestServer(db.dsn, { SHUTDOWN_TIMEOUT_MS: '10000' });
      const port = Number(new URL(server.url).port);
      const connections: RawConnection[] = [];
      for (let i = 0; i < connectionsPerRound; i++) connections.push(await openRaw(port));

      // One request per connection, a few every millisecond, until shutdown has finished: some
      // land while the pools close, which is where the last step used to miss them.
      const stopping = server.service.shutdown();
      let finished = false;
      void stopping.then(() => (finished = true));
      const sent: RawConnection[] = [];
      while (!finished && sent.length < connections.length) {
        for (const connection of connections.slice(sent.length, sent.length + 3)) {
          connection.write(jsonPost('/events', JSON.stringify(makeEvent())));
          sent.push(connection);
        }
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      const { clean } = await stopping;
      await server.stop(); // the same shutdown, and the contract watch ends
      verdicts.push(clean);
      for (const connection of sent) {
        const response = await connection.next();
        const status = response?.status ?? 0;
        refusals.set(status, (refusals.get(status) ?? 0) + 1);
      }
      destroyRawConnections();
    }
    expect(verdicts).toEqual(new Array(rounds).fill(true));
    // Every request sent during shutdown was answered, and none was accepted.
    expect([...refusals.keys()]).toEqual([503]);
  });

  it('refuses reads on kept-alive connections once shutdown began, and /readyz says why', async () => {
    const server = await startTestServer(db.dsn);
    const port = Number(new URL(server.url).port);
    const paths = ['/metrics', '/events/export', '/readyz', '/healthz'];
    const connections = await Promise.all(paths.map(() => openRaw(port)));
    expect((await server.service.shutdown()).clean).toBe(true);
    await server.stop();

    const answers = [];
    for (const [i, path] of paths.entries()) {
      const connection = connections[i]!;
      connection.write(rawGet(path));
      const response = await connection.next();
      const body = JSON.parse(response?.body ?? '{}') as {
        code?: string;
        checks?: { serving?: string };
      };
      answers.push({
        path,
        status: response?.status,
        code: body.code,
        retryAfter: response?.headers['retry-after'],
        serving: body.checks?.serving,
      });
    }
    expect(answers).toEqual([
      { path: '/metrics', status: 503, code: 'shutting_down', retryAfter: '1', serving: undefined },
      {
        path: '/events/export',
        status: 503,
        code: 'shutting_down',
        retryAfter: '1',
        serving: undefined,
      },
      {
        path: '/readyz',
        status: 503,
        code: 'not_ready',
        retryAfter: undefined,
        serving: 'shutting down',
      },
      { path: '/healthz', status: 200, code: undefined, retryAfter: undefined, serving: undefined },
    ]);
    // The refusals close their connections; the balancer's probe connection stays usable.
    await connections[0]!.closed();
    await connections[1]!.closed();
  });

  it('cuts an export still streaming at SHUTDOWN_TIMEOUT_MS, so the stop ends on time', async () => {
    // Far more NDJSON than the loopback socket buffers hold: the export waits on a reader that
    // stopped reading, and its stall deadline is much later than the shutdown's.
    const hourAgo = Math.floor(Date.now() / 1000) - 3600;
    await db.query(
      `INSERT INTO events (idem_key, event_name, user_id, occurred_at)
       SELECT gen_random_uuid(), 'export', 'user-' || g, to_timestamp($1)
       FROM generate_series(1, 200000) g`,
      [hourAgo],
    );
    const server = await startTestServer(db.dsn, {
      SHUTDOWN_TIMEOUT_MS: '1000',
      EXPORT_STALL_TIMEOUT_MS: '600000',
    });
    const connection = await openRaw(Number(new URL(server.url).port));
    connection.write(rawGet(`/events/export?from=${hourAgo}&to=${hourAgo + 1}`));
    await once(connection.socket, 'data');
    connection.socket.pause();

    // Without the cut, this waits for the export's pool connection until the stall deadline.
    const { clean } = await server.service.shutdown();
    await server.stop();
    expect(clean).toBe(false);
    connection.socket.resume();
    await connection.closed();
  });
});
