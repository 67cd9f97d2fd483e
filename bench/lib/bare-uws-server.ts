// The bare-uWS ceilings: a separate process (like the real server, so the load generator never
// shares its thread) that does nothing but HTTP. GET answers one constant JSON body (the metrics
// benchmark's ceiling); POST reads the body, parses it as JSON and answers the single-event 202
// (the ingest benchmark's ceiling for single events). Started by startBareUwsServer; HOST, PORT
// and BARE_UWS_BODY come from the environment. It prints the same JSON "listening" line as the
// service and closes its listen token on SIGTERM.
import type { us_listen_socket } from 'uWebSockets.js';
import { loadNativeUws } from '../../src/http/load-uws.js';

const { uws } = loadNativeUws();
const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? '0');
const body = process.env.BARE_UWS_BODY ?? '{"ok":true}';

const app = uws.App();
app.get('/*', (res) => {
  // Synchronous answer: no cork needed (uWS corks inside its own callback).
  res.writeStatus('200 OK').writeHeader('content-type', 'application/json').end(body);
});
const storedBody = '{"status":"stored","inserted":1,"duplicate":false}';
app.post('/*', (res) => {
  let aborted = false;
  res.onAborted(() => (aborted = true));
  const chunks: Buffer[] = [];
  res.onData((chunk, isLast) => {
    chunks.push(Buffer.from(chunk.slice(0))); // the chunk is only valid during this callback
    if (!isLast) return;
    JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (!aborted)
      res
        .writeStatus('202 Accepted')
        .writeHeader('content-type', 'application/json')
        .end(storedBody);
  });
});
app.any('/*', (res) => {
  res.writeStatus('405 Method Not Allowed').end();
});

let token: us_listen_socket | null = null;
app.listen(host, port, (listenToken: us_listen_socket | false) => {
  if (!listenToken) {
    process.stderr.write(`bare-uws: could not listen on ${host}:${port}\n`);
    process.exit(1);
  }
  token = listenToken;
  process.stdout.write(`${JSON.stringify({ level: 30, msg: 'listening', port })}\n`);
});

process.once('SIGTERM', () => {
  if (token) uws.us_listen_socket_close(token);
  token = null;
  // Open keep-alive connections would hold the loop; the ceiling has nothing to drain.
  process.exit(0);
});
