// The Ployz example app: a tiny HTTP server used by examples/hello.toml and the deploy e2e tests.
//   GET /         200 text/plain: "<HELLO_MESSAGE> (version <HELLO_VERSION>) from <hostname>\n"
//   GET /healthz  200 "ok\n"
//   anything else 404
// Env: PORT (default 8080), HELLO_MESSAGE (default "hello from ployz"), HELLO_VERSION (default "v1"),
// HELLO_LISTEN_DELAY_MS (default 0: how long to wait before listening — a slow starter for tests).
import { createServer } from 'node:http';
import { hostname } from 'node:os';

const port = Number(process.env.PORT ?? 8080);
const message = process.env.HELLO_MESSAGE ?? 'hello from ployz';
const version = process.env.HELLO_VERSION ?? 'v1';
const host = hostname();

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
  } else if (path === '/') {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'x-hello-version': version });
    res.end(`${message} (version ${version}) from ${host}\n`);
  } else if (path === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
  } else {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }
});

const listenDelayMs = Number(process.env.HELLO_LISTEN_DELAY_MS ?? 0);
setTimeout(() => {
  server.listen(port, () => {
    console.log(JSON.stringify({ level: 'info', msg: 'listening', port, version }));
  });
}, listenDelayMs);

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
