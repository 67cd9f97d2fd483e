// The two uWebSockets.js builds pulse depends on: which one serves here, that every build loading
// here answers the calls pulse makes the same way, and uWS's own HTTP behaviours pinned per build
// (scripts/test-node24.sh runs this file under Node 24 on Debian 13, where the newer one serves).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { us_listen_socket } from 'uWebSockets.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isNativeUws, loadNativeUws, uwsBuilds, type Uws } from '../../src/http/load-uws.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent } from '../helpers/events.js';
import {
  destroyRawConnections,
  jsonPost,
  openRaw,
  rawGet,
  rawPost,
  rawRequest,
} from '../helpers/raw-http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { perUwsBuild, servingUwsBuild } from '../helpers/uws-build.js';
import { waitUntil } from '../helpers/wait-until.js';

const require = createRequire(import.meta.url);
const manifest = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
) as { dependencies: Record<string, string> };

let db: TestDatabase;
let server: TestServer;
let port: number;
beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.dsn);
  port = Number(new URL(server.url).port);
});
afterEach(destroyRawConnections);
afterAll(async () => {
  await server?.stop();
  await db?.close();
});

async function countEvents(): Promise<number> {
  const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
  return rows[0]!.n;
}

const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header
  ?.glibcVersionRuntime;
const [glibcMajor = 0, glibcMinor = 0] = (glibc ?? '0.0').split('.').map(Number);

describe('the build serving here', () => {
  it('is the newest one that loads natively on this Node and glibc', () => {
    const newerLoads =
      ['115', '127', '137', '141'].includes(process.versions.modules) &&
      (glibcMajor > 2 || (glibcMajor === 2 && glibcMinor >= 38));
    expect(servingUwsBuild.module).toBe(newerLoads ? 'uWebSockets.js' : 'uws-20.30');
  });

  it('is the package and version package.json pins under its alias', () => {
    const { module, packageName, version } = servingUwsBuild;
    expect(manifest.dependencies[module]).toBe(`npm:${packageName}@${version}`);
  });

  it('is named in /internal/metrics', async () => {
    const text = await (await fetch(`${server.url}/internal/metrics`)).text();
    const { packageName, version } = servingUwsBuild;
    expect(text).toContain(`pulse_uws_build_info{build="${packageName}",version="${version}"} 1`);
  });

  it('is refused with one message naming every build and where it runs when none loads', () => {
    const none = [
      { module: 'no-such-uws-build', runsOn: 'no Node at all' },
      { module: 'another-missing-build', runsOn: 'nowhere either' },
    ];
    expect(() => loadNativeUws(none)).toThrow(
      new RegExp(
        `refusing to start on a JS fallback\\. Running Node ${process.version.replace(/\./g, '\\.')} ` +
          `.*no-such-uws-build on no Node at all; another-missing-build on nowhere either\\.`,
      ),
    );
  });

  it('lists both dependencies, newest first', () => {
    expect(uwsBuilds.map((b) => manifest.dependencies[b.module]?.replace(/^npm:/, ''))).toEqual([
      '@btc-vision/uwebsockets.js@20.57.0',
      '@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0',
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// The calls pulse makes, on a bare app of every build that loads natively here

/** Calls every uWS function pulse uses and reports what each returned. */
function probeApp(uws: Uws) {
  const app = uws.App();
  const started: string[] = [];
  const aborted: string[] = [];
  app.post('/probe/:name', (res, req) => {
    const names: string[] = [];
    req.forEach((name) => names.push(name));
    const head = {
      method: req.getMethod(),
      url: req.getUrl(),
      query: req.getQuery() ?? '',
      header: req.getHeader('x-probe'),
      missingHeader: req.getHeader('x-missing'),
      names,
    };
    res.onAborted(() => aborted.push(head.url));
    started.push(head.url);
    const chunks: Buffer[] = [];
    res.onData((chunk, isLast) => {
      chunks.push(Buffer.from(chunk.slice(0)));
      if (!isLast) return;
      setImmediate(() =>
        res.cork(() => {
          res.writeStatus('201 Created');
          res.writeHeader('x-remote', Buffer.from(res.getRemoteAddressAsText()).toString());
          res.end(JSON.stringify({ ...head, body: Buffer.concat(chunks).toString() }), true);
        }),
      );
    });
  });
  app.get('/empty', (res) => {
    res.onAborted(() => undefined);
    setImmediate(() => res.cork(() => res.writeStatus('204 No Content').endWithoutBody()));
  });
  app.get('/close', (res) => {
    res.onAborted(() => undefined);
    setImmediate(() => res.close());
  });
  app.get('/stream', (res) => {
    res.onAborted(() => undefined);
    res.cork(() => {
      res.writeStatus('200 OK').writeHeader('content-type', 'text/plain');
      res.write('first,');
    });
    res.onWritable(() => true);
    setImmediate(() => res.cork(() => res.end('last')));
  });
  return { app, started, aborted };
}

const loadingHere = uwsBuilds.filter((spec) => {
  try {
    return isNativeUws(require(spec.module) as Uws);
  } catch {
    return false;
  }
});

describe.each(loadingHere.map((spec) => spec.module))('the build %s, bare', (module) => {
  const uws = require(module) as Uws;
  const { app, started, aborted } = probeApp(uws);
  let listenSocket: us_listen_socket;
  let probePort: number;
  beforeAll(async () => {
    listenSocket = await new Promise((resolve, reject) =>
      app.listen('127.0.0.1', 0, (token) => (token ? resolve(token) : reject(new Error('listen')))),
    );
    probePort = uws.us_socket_local_port(listenSocket);
  });
  afterAll(() => uws.us_listen_socket_close(listenSocket));

  it('reads the request head and a copied body, and answers after a tick in cork', async () => {
    const res = await fetch(`http://127.0.0.1:${probePort}/probe/a?x=1&y=2`, {
      method: 'POST',
      headers: { 'X-Probe': 'value', 'content-type': 'text/plain' },
      body: 'b'.repeat(100_000),
    });
    const body = (await res.json()) as Record<string, unknown>;
    expect({
      status: res.status,
      remote: res.headers.get('x-remote'),
      connection: res.headers.get('connection'),
      body: { ...body, names: (body.names as string[]).sort(), body: String(body.body).length },
    }).toEqual({
      status: 201,
      remote: '127.0.0.1',
      connection: 'close',
      body: {
        method: 'post',
        url: '/probe/a',
        query: 'x=1&y=2',
        header: 'value',
        missingHeader: '',
        names: [
          'accept',
          'accept-encoding',
          'accept-language',
          'connection',
          'content-length',
          'content-type',
          'host',
          'sec-fetch-mode',
          'user-agent',
          'x-probe',
        ],
        body: 100_000,
      },
    });
  });

  it('answers 204 with no body and a streamed body written in two parts', async () => {
    const empty = await fetch(`http://127.0.0.1:${probePort}/empty`);
    const stream = await fetch(`http://127.0.0.1:${probePort}/stream`);
    expect([
      empty.status,
      await empty.text(),
      empty.headers.get('content-length'),
      stream.status,
      await stream.text(),
    ]).toEqual([204, '', null, 200, 'first,last']);
  });

  it('closes the connection without an answer on close()', async () => {
    expect(await rawRequest(probePort, rawGet('/close'))).toBeNull();
  });

  it('calls onAborted when the client goes away mid-body', async () => {
    const connection = await openRaw(probePort);
    connection.write(rawPost('/probe/gone', ['Content-Length: 100'], 'partial'));
    await waitUntil('the handler', () => started.includes('/probe/gone'), { timeoutMs: 10_000 });
    connection.destroy();
    await waitUntil('onAborted', () => aborted.includes('/probe/gone'), { timeoutMs: 10_000 });
    expect(aborted).toEqual(['/probe/gone']);
  });

  it('stops accepting connections once the listen socket is closed', async () => {
    const { app: other } = probeApp(uws);
    const token = await new Promise<us_listen_socket>((resolve, reject) =>
      other.listen('127.0.0.1', 0, (t) => (t ? resolve(t) : reject(new Error('listen')))),
    );
    const otherPort = uws.us_socket_local_port(token);
    uws.us_listen_socket_close(token);
    await expect(fetch(`http://127.0.0.1:${otherPort}/empty`)).rejects.toThrow();
  });
});

// ---------------------------------------------------------------------------------------------
// uWS's own HTTP behaviours, per build, through the real server

describe('uWS behaviour pinned per build', () => {
  const event = () => JSON.stringify(makeEvent());

  it('answers an HTTP/1.0 request with 505 (20.57) or not at all until the idle timeout (20.30)', async () => {
    const body = event();
    const request = [
      'POST /events HTTP/1.0',
      'Host: 127.0.0.1',
      'Content-Type: application/json',
      `Content-Length: ${body.length}`,
      '',
      body,
    ].join('\r\n');
    const before = await countEvents();
    const response = await rawRequest(port, request);
    expect(response?.status ?? null).toBe(perUwsBuild({ '20.30': null, '20.57': 505 }));
    expect(await countEvents()).toBe(before);
  });

  it('closes the connection unanswered when a POST is pipelined behind a pending POST', async () => {
    // uWS refuses async pipelining in both builds: the first request is in doubt (resent with the
    // same event_id it is stored once), the second never runs.
    const connection = await openRaw(port);
    connection.write(
      Buffer.concat([
        jsonPost('/events', event()),
        jsonPost('/events/bulk', `{"events":[${event()}]}`),
      ]),
    );
    expect(await connection.next()).toBeNull();
  });

  it('accepts a POST with a 3 KB header pulse does not read, in both builds', async () => {
    const response = await rawRequest(
      port,
      jsonPost('/events', event(), [`X-Padding: ${'a'.repeat(3 * 1024)}`]),
    );
    expect(response?.status).toBe(202);
  });

  it('answers a POST with a 20 KB header pulse does not read: 431 (20.57, above UWS_HTTP_MAX_HEADERS_SIZE) or 202 (20.30)', async () => {
    const response = await rawRequest(
      port,
      jsonPost('/events', event(), [`X-Padding: ${'a'.repeat(20 * 1024)}`]),
    );
    expect(response?.status).toBe(perUwsBuild({ '20.30': 202, '20.57': 431 }));
  });

  it('answers a POST with a 1 MB header: 431 (20.57) or not at all (20.30)', async () => {
    const before = await countEvents();
    const response = await rawRequest(
      port,
      jsonPost('/events', event(), [`X-Padding: ${'a'.repeat(1024 * 1024)}`]),
    );
    expect(response?.status ?? null).toBe(perUwsBuild({ '20.30': null, '20.57': 431 }));
    expect(await countEvents()).toBe(before);
  });

  it('answers Content-Length beside Transfer-Encoding: 400 (20.57) or not at all (20.30)', async () => {
    const body = event();
    const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    const before = await countEvents();
    const response = await rawRequest(
      port,
      rawPost(
        '/events',
        [
          'Content-Type: application/json',
          `Content-Length: ${chunked.length}`,
          'Transfer-Encoding: chunked',
        ],
        chunked,
      ),
    );
    expect(response?.status ?? null).toBe(perUwsBuild({ '20.30': null, '20.57': 400 }));
    expect(await countEvents()).toBe(before);
  });

  it('cuts a request head left incomplete, trickled or not, at ~10 s (20.30) or ~30 s (20.57)', async () => {
    const connection = await openRaw(port);
    const openedAt = performance.now();
    connection.write('POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    const trickle = setInterval(() => connection.write('a'), 500);
    await waitUntil('uWS to cut the connection', () => connection.isClosed, {
      timeoutMs: 90_000,
    }).finally(() => clearInterval(trickle));
    const aliveSeconds = (performance.now() - openedAt) / 1000;
    expect(aliveSeconds < 20 ? '~10 s' : '~30 s').toBe(
      perUwsBuild({ '20.30': '~10 s', '20.57': '~30 s' }),
    );
  });

  it('answers a non-numeric Content-Length: 400 (20.57) or not at all (20.30)', async () => {
    const response = await rawRequest(
      port,
      rawPost('/events', ['Content-Type: application/json', 'Content-Length: 12abc']),
    );
    expect(response?.status ?? null).toBe(perUwsBuild({ '20.30': null, '20.57': 400 }));
  });
});
